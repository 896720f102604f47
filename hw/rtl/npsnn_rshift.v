// The rounded shift rshift(a, e) of docs/golden-model.md, section 1. Combinational.
//   e > 0: (a + 2^(e-1)) >> e   arithmetic shift, so ties round up (towards +infinity)
//   e = 0: a
//   e < 0: a << -e              exact as long as -e <= LSH_MAX
// For e > IN_W the result is 0 for every a (|a| < 2^(e-2)), as for e = IN_W + 1, so the
// right-shift amount is clamped there and a + half fits IN_W + 2 bits.
module npsnn_rshift #(
    parameter integer IN_W    = 24,   // width of a
    parameter integer LSH_MAX = 16,   // largest left shift (-e) held exactly (>= 1)
    parameter integer Y_W     = IN_W + LSH_MAX + 2   // derived: do not override
) (
    input  wire signed [IN_W-1:0] a,
    input  wire signed [7:0]      e,
    output wire signed [Y_W-1:0]  y
);
    localparam integer RW = IN_W + 2;
    localparam integer CLAMP_I = IN_W + 1;
    localparam [7:0] CLAMP = CLAMP_I[7:0];
    wire       right = ~e[7] & (|e);                   // e > 0
    wire [7:0] r_amt = (e > $signed(CLAMP)) ? CLAMP : e;
    wire [7:0] l_amt = e[7] ? -e : 8'd0;                // -e for e < 0
    // right shift, rounding half up: add 2^(e-1) before the arithmetic shift
    wire signed [RW-1:0] a_r  = {{2{a[IN_W-1]}}, a};
    wire signed [RW-1:0] half = right ? $signed({{(RW-1){1'b0}}, 1'b1} << (r_amt - 8'd1))
                                      : {RW{1'b0}};
    wire signed [RW-1:0] shifted_right = (a_r + half) >>> r_amt;
    // left shift (e <= 0)
    wire signed [Y_W-1:0] a_l = {{(Y_W-IN_W){a[IN_W-1]}}, a};
    wire signed [Y_W-1:0] shifted_left = a_l <<< l_amt;
    assign y = right ? {{(Y_W-RW){shifted_right[RW-1]}}, shifted_right} : shifted_left;
endmodule
