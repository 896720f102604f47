// Walks the elements of an (H, W, C) tensor in row-major order (C fastest), one per cycle:
// the flat index q and its coordinates h, w, c and token n = h * W + w. `active` marks
// the cycles in which an element is issued; `last` marks the final one.
module npsnn_sweep #(
    parameter integer H = 1,
    parameter integer W = 1,
    parameter integer C = 1,
    // derived widths: do not override
    parameter integer QW = (H * W * C > 1) ? $clog2(H * W * C) : 1,
    parameter integer HW = (H > 1) ? $clog2(H) : 1,
    parameter integer WW = (W > 1) ? $clog2(W) : 1,
    parameter integer CW = (C > 1) ? $clog2(C) : 1,
    parameter integer NW = (H * W > 1) ? $clog2(H * W) : 1
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          start,
    output reg           active,
    output wire          last,
    output reg  [QW-1:0] q,
    output reg  [HW-1:0] h,
    output reg  [WW-1:0] w,
    output reg  [CW-1:0] c,
    output reg  [NW-1:0] n
);
    localparam integer H_END = H - 1, W_END = W - 1, C_END = C - 1;
    localparam [HW-1:0] H_LAST = H_END[HW-1:0];
    localparam [WW-1:0] W_LAST = W_END[WW-1:0];
    localparam [CW-1:0] C_LAST = C_END[CW-1:0];
    wire c_wrap = (c == C_LAST);
    wire w_wrap = (w == W_LAST);
    assign last = active & c_wrap & w_wrap & (h == H_LAST);
    always @(posedge clk) begin
        if (rst) begin
            active <= 1'b0;
            q <= {QW{1'b0}}; h <= {HW{1'b0}}; w <= {WW{1'b0}}; c <= {CW{1'b0}};
            n <= {NW{1'b0}};
        end else if (start) begin
            active <= 1'b1;
            q <= {QW{1'b0}}; h <= {HW{1'b0}}; w <= {WW{1'b0}}; c <= {CW{1'b0}};
            n <= {NW{1'b0}};
        end else if (active) begin
            if (last) active <= 1'b0;
            q <= q + 1'b1;
            c <= c_wrap ? {CW{1'b0}} : c + 1'b1;
            if (c_wrap) begin
                w <= w_wrap ? {WW{1'b0}} : w + 1'b1;
                n <= n + 1'b1;
                if (w_wrap) h <= h + 1'b1;
            end
        end
    end
endmodule
