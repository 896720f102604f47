// Range check of an exact signed value against a declared width (docs/golden-model.md,
// section 1): the legal range is [-2^(OUT_W-1), 2^(OUT_W-1) - 1]. Combinational.
//   POLICY_ERROR:    `overflow` flags the value (the design stops); `checked` = low bits
//   POLICY_SATURATE: out-of-range values clamp to the nearest end of the range
//   POLICY_WRAP:     the low OUT_W bits (two's complement modulo 2^OUT_W)
module npsnn_range_check #(
    parameter integer IN_W   = 26,   // width of the exact value (> OUT_W: it can overflow)
    parameter integer OUT_W  = 24,   // declared width
    parameter integer POLICY = 0
) (
    input  wire signed [IN_W-1:0]  value,
    output wire signed [OUT_W-1:0] checked,
    output wire                    overflow
);
`include "npsnn_codes.vh"
    generate
        if (IN_W > OUT_W) begin : narrow
            // in range <=> the bits from OUT_W-1 up are all copies of the sign
            wire [IN_W-OUT_W:0] top = value[IN_W-1:OUT_W-1];
            assign overflow = ~((&top) | ~(|top));
            localparam [OUT_W-1:0] MAX_VALUE = {1'b0, {(OUT_W-1){1'b1}}};
            localparam [OUT_W-1:0] MIN_VALUE = {1'b1, {(OUT_W-1){1'b0}}};
            wire saturate = (POLICY == POLICY_SATURATE) & overflow;
            assign checked = saturate ? (value[IN_W-1] ? MIN_VALUE : MAX_VALUE)
                                      : value[OUT_W-1:0];
        end else if (IN_W == OUT_W) begin : same
            assign overflow = 1'b0;
            assign checked  = value;
        end else begin : wide
            assign overflow = 1'b0;
            assign checked  = {{(OUT_W-IN_W){value[IN_W-1]}}, value};
        end
    endgenerate
endmodule
