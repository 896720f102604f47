// Codes shared by the RTL and the replay (npsnn/hw/params.py reads them from this file).
// Included inside module bodies; a module uses only some of them.
/* verilator lint_off UNUSEDPARAM */
// overflow policy of every range check (docs/golden-model.md, section 1)
localparam integer POLICY_ERROR    = 0;   // flag the value (the chip stops); output = low bits
localparam integer POLICY_SATURATE = 1;   // clamp to [-2^(b-1), 2^(b-1) - 1]
localparam integer POLICY_WRAP     = 2;   // two's complement modulo 2^b
// term kinds (section 4.1) and the head's synaptic sum, as address-generator modes
localparam integer KIND_CONV               = 0;
localparam integer KIND_CONV_BITPLANE      = 1;
localparam integer KIND_AXIS_H             = 2;
localparam integer KIND_AXIS_W             = 3;
localparam integer KIND_DENSE              = 4;
localparam integer KIND_DENSE_SIGNED_TOKEN = 5;
localparam integer KIND_DENSE_TOKEN        = 6;
localparam integer KIND_DENSE_SHIFT_TOKEN  = 7;
localparam integer KIND_HEAD               = 8;   // every spike adds weight[:, c] to logit sums
/* verilator lint_on UNUSEDPARAM */
