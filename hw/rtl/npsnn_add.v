// Element-wise sum of N_SRC tensors ("add" op, docs/golden-model.md, section 4.2), one
// element per cycle: value = range_check(src_0 + ... + src_{N_SRC-1}, MEM_BITS).
// The sources are read at the same flat index through one read port each, packed
// {src_{N_SRC-1}, ..., src_0} on rd_data (each IN_BITS wide, sign-extended by the caller).
module npsnn_add #(
    parameter integer H        = 8,
    parameter integer W        = 8,
    parameter integer C        = 48,
    parameter integer N_SRC    = 2,
    parameter integer IN_BITS  = 24,
    parameter integer MEM_BITS = 24,
    parameter integer POLICY   = 0,
    // derived width: do not override
    parameter integer AW = (H * W * C > 1) ? $clog2(H * W * C) : 1
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     start,
    output wire                     busy,
    output reg                      done,
    output wire [AW-1:0]            rd_addr,
    input  wire [N_SRC*IN_BITS-1:0] rd_data,
    output reg                      wr_en,
    output reg  [AW-1:0]            wr_addr,
    output wire [MEM_BITS-1:0]      wr_value,
    output wire                     ovf_value
);
    localparam integer SUM_W = IN_BITS + $clog2(N_SRC + 1);
    reg running;
    wire active, last;
    wire go = start & ~running;
    /* verilator lint_off PINCONNECTEMPTY */   // coordinates not needed (below)
    npsnn_sweep #(.H(H), .W(W), .C(C)) sweep (
        .clk(clk), .rst(rst), .start(go), .active(active), .last(last), .q(rd_addr),
        .h(), .w(), .c(), .n());   // coordinates not needed: every element is alike
    /* verilator lint_on PINCONNECTEMPTY */
    assign busy = running;

    reg signed [SUM_W-1:0] sum;
    integer j;
    always @* begin
        sum = {SUM_W{1'b0}};
        for (j = 0; j < N_SRC; j = j + 1)
            sum = sum + {{(SUM_W-IN_BITS){rd_data[j*IN_BITS+IN_BITS-1]}},
                         rd_data[j*IN_BITS +: IN_BITS]};
    end
    npsnn_range_check #(.IN_W(SUM_W), .OUT_W(MEM_BITS), .POLICY(POLICY)) check_value (
        .value(sum), .checked(wr_value), .overflow(ovf_value));

    reg wr_last;
    always @(posedge clk) begin
        wr_en <= active & ~rst;
        wr_addr <= rd_addr;
        wr_last <= last;
        done <= 1'b0;
        if (rst) running <= 1'b0;
        else if (go) running <= 1'b1;
        else if (wr_en & wr_last) begin running <= 1'b0; done <= 1'b1; end
    end
endmodule
