// Codes shared by the RTL and the replay (npsnn/hw/layers.py, rtl_codes, reads them here).
// Included inside module bodies; a module uses only some of them.
/* verilator lint_off UNUSEDPARAM */
// overflow policy of every range check (docs/golden-model.md, section 1)
localparam integer POLICY_ERROR    = 0;   // flag the value (the chip stops); output = low bits
localparam integer POLICY_SATURATE = 1;   // clamp to [-2^(b-1), 2^(b-1) - 1]
localparam integer POLICY_WRAP     = 2;   // two's complement modulo 2^b
// term kinds (section 4.1): one code per row of npsnn.golden.terms.TERM_KINDS (its
// `rtl_kind` field names the code), plus the head's synaptic sum
localparam integer KIND_CONV               = 0;
localparam integer KIND_CONV_BITPLANE      = 1;
localparam integer KIND_AXIS               = 2;   // parameter AXIS_W: 0 mixes along H, 1 along W
localparam integer KIND_DENSE              = 3;
localparam integer KIND_DENSE_SIGNED_TOKEN = 4;
localparam integer KIND_DENSE_TOKEN        = 5;
localparam integer KIND_DENSE_SHIFT_TOKEN  = 6;
localparam integer KIND_HEAD               = 7;   // every spike adds weight[:, c] to logit sums
/* verilator lint_on UNUSEDPARAM */
