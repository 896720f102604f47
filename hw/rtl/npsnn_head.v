// Classifier head ("head" op, docs/golden-model.md, section 4.4), one time step per
// `start`:
//
//   1. every input spike at (h, w, c) adds the column weight[:, c] to K sums
//      (scanner, address generator in KIND_HEAD mode, accumulator memory of K words);
//   2. for k = 0 .. K-1:
//        step[k]   = range_check(bias[k] + sum[k], ACC_BITS)        -> wr_step
//        logits[k] = range_check(logits[k] + step[k], ACC_BITS)     -> wr_logits
//      with logits = 0 before the step marked `first` (t = 0).
// The prediction (argmax of the final logits, first index on ties) is left to the reader.
module npsnn_head #(
    parameter integer H         = 2,
    parameter integer W         = 2,
    parameter integer C         = 192,
    parameter integer K         = 10,
    parameter integer W_BITS    = 8,
    parameter integer B_BITS    = 24,
    parameter integer ACC_BITS  = 24,
    parameter integer ACC_INT_W = 32,   // holds every partial sum exactly
    parameter integer POLICY    = 0,
    parameter         WEIGHT_FILE = "weight.hex",
    parameter         BIAS_FILE   = "bias.hex",
    // derived widths: do not override
    parameter integer IAW = (H * W * C > 1) ? $clog2(H * W * C) : 1,
    parameter integer KW_ = (K > 1) ? $clog2(K) : 1
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,
    input  wire                first,
    output wire                busy,
    output reg                 done,
    output wire [IAW-1:0]      rd_addr,
    input  wire                rd_data,
    output wire                wr_en,
    output wire [KW_-1:0]      wr_addr,
    output wire [ACC_BITS-1:0] wr_step,
    output wire [ACC_BITS-1:0] wr_logits,
    output wire                ovf_step,
    output wire                ovf_logits
);
`include "npsnn_codes.vh"
    localparam integer YW = (H > 1) ? $clog2(H) : 1;
    localparam integer XW = (W > 1) ? $clog2(W) : 1;
    localparam integer CW = (C > 1) ? $clog2(C) : 1;
    localparam integer NW = (H * W > 1) ? $clog2(H * W) : 1;
    localparam integer WAW = (K * C > 1) ? $clog2(K * C) : 1;

    localparam [1:0] S_IDLE = 2'd0, S_ACCUM = 2'd1, S_DRAIN = 2'd2, S_POST = 2'd3;
    reg [1:0] state;
    reg first_step;
    wire acc_ready, acc_idle, scan_finished, agu_idle;
    wire go = start & (state == S_IDLE) & acc_ready;
    assign busy = (state != S_IDLE) | ~acc_ready;
    wire sweep_start = (state == S_DRAIN) & acc_idle;
    reg p_v, p_last;
    always @(posedge clk) begin
        done <= 1'b0;
        if (rst) state <= S_IDLE;
        else case (state)
            S_IDLE:  if (go) begin state <= S_ACCUM; first_step <= first; end
            S_ACCUM: if (scan_finished & agu_idle) state <= S_DRAIN;
            S_DRAIN: if (acc_idle) state <= S_POST;
            default: if (p_v & p_last) begin state <= S_IDLE; done <= 1'b1; end
        endcase
    end

    // ---- 1. accumulate ---------------------------------------------------------------
    wire          ev_valid, ev_ready;
    wire [YW-1:0] ev_y;
    wire [XW-1:0] ev_x;
    wire [CW-1:0] ev_c;
    wire [NW-1:0] ev_n;
    wire          ev_data;
    npsnn_scan #(.H(H), .W(W), .C(C), .DATA_W(1)) scan (
        .clk(clk), .rst(rst), .start(go), .rd_addr(rd_addr), .rd_data(rd_data),
        .ev_valid(ev_valid), .ev_ready(ev_ready), .ev_y(ev_y), .ev_x(ev_x), .ev_c(ev_c),
        .ev_n(ev_n), .ev_data(ev_data), .finished(scan_finished));
    wire           add_v;
    wire [KW_-1:0] add_acc;
    wire [WAW-1:0] add_w;
    wire [2:0]     add_k;
    npsnn_agu #(.KIND(KIND_HEAD), .H_IN(H), .W_IN(W), .C_IN(C), .H_OUT(1), .W_OUT(1),
                .C_OUT(K), .DATA_W(1), .ACC_DEPTH(K), .W_DEPTH(K * C)) agu (
        .clk(clk), .rst(rst), .ev_valid(ev_valid), .ev_ready(ev_ready), .ev_y(ev_y),
        .ev_x(ev_x), .ev_c(ev_c), .ev_n(ev_n), .ev_data(ev_data), .add_v(add_v),
        .add_acc(add_acc), .add_w(add_w), .add_k(add_k), .idle(agu_idle));
    wire           sw_active, sw_last;
    wire [KW_-1:0] sw_k;
    wire signed [ACC_INT_W-1:0] sum;
    npsnn_accum #(.DEPTH(K), .ACC_W(ACC_INT_W), .W_DEPTH(K * C), .W_BITS(W_BITS),
                  .WEIGHT_FILE(WEIGHT_FILE)) accum (
        .clk(clk), .rst(rst), .ready(acc_ready), .add_v(add_v), .add_acc(add_acc),
        .add_w(add_w), .add_k(add_k), .take_v(sw_active), .take_addr(sw_k),
        .take_data(sum), .idle(acc_idle));

    // ---- 2. step sums and running logits --------------------------------------------------
    /* verilator lint_off PINCONNECTEMPTY */   // the flat index is the class
    npsnn_sweep #(.H(1), .W(1), .C(K)) sweep (
        .clk(clk), .rst(rst), .start(sweep_start), .active(sw_active), .last(sw_last),
        .q(sw_k), .h(), .w(), .c(), .n());
    /* verilator lint_on PINCONNECTEMPTY */
    reg signed [B_BITS-1:0]   bias_rom [0:K-1];
    reg signed [ACC_BITS-1:0] logits [0:K-1];
    initial $readmemh(BIAS_FILE, bias_rom);
    reg signed [B_BITS-1:0]   bias;
    reg signed [ACC_BITS-1:0] logit_rd;
    reg [KW_-1:0]             p_k;
    localparam integer S_W = ((ACC_INT_W > B_BITS) ? ACC_INT_W : B_BITS) + 1;
    wire signed [S_W-1:0] step_exact = {{(S_W-ACC_INT_W){sum[ACC_INT_W-1]}}, sum} +
                                       {{(S_W-B_BITS){bias[B_BITS-1]}}, bias};
    wire signed [ACC_BITS-1:0] step;
    npsnn_range_check #(.IN_W(S_W), .OUT_W(ACC_BITS), .POLICY(POLICY)) check_step (
        .value(step_exact), .checked(step), .overflow(ovf_step));
    wire signed [ACC_BITS:0] logit_old = first_step ? {(ACC_BITS+1){1'b0}}
                                                    : {logit_rd[ACC_BITS-1], logit_rd};
    wire signed [ACC_BITS-1:0] logit_new;
    npsnn_range_check #(.IN_W(ACC_BITS + 1), .OUT_W(ACC_BITS), .POLICY(POLICY)) check_logits (
        .value(logit_old + {step[ACC_BITS-1], step}), .checked(logit_new),
        .overflow(ovf_logits));
    always @(posedge clk) begin
        bias <= bias_rom[sw_k];
        logit_rd <= logits[sw_k];
        p_v <= sw_active & ~rst;
        p_k <= sw_k;
        p_last <= sw_last;
        if (p_v) logits[p_k] <= logit_new;
    end
    assign wr_en     = p_v;
    assign wr_addr   = p_k;
    assign wr_step   = step;
    assign wr_logits = logit_new;
endmodule
