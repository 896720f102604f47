// A synaptic layer ("term" op, docs/golden-model.md, section 4.1), one time step per
// `start`:
//
//   1. accumulate: the scanner reads the input map x (spikes, or pixels for
//      conv_bitplane) and the address generator turns every event into weight-column
//      additions acc[a] += W[w] << k (npsnn_agu, npsnn_accum); nothing is multiplied.
//   2. sweep the outputs (h, w, o) in row-major order: read and clear acc, then
//        acc   = range_check(acc, ACC_BITS)                      -> wr_acc
//        value = range_check(sign * rshift(acc, e) + bias, ACC_BITS) -> wr_value
//      with e, bias and sign picked per output as the kind says (npsnn_codes.vh):
//        conv, conv_bitplane, dense    e = shift[o],     bias[o]
//        axis (along H / along W)      e = shift[h] / shift[w], bias likewise
//        dense_signed_token            e = shift[o],     bias[n, o], sign[n]
//        dense_token                   e = shift[n, o],  bias[n, o]
//        dense_shift_token             e = shift[n, o],  bias[n, o], sign[n]
//      (sign is +1 for the kinds without one; a sign word is 01 = +1, 11 = -1, 00 = 0).
// Interfaces: a synchronous read port on the input map (data one cycle after the
// address) and a write port for the outputs, both flat row-major indices.
module npsnn_term #(
    parameter integer KIND      = 3,    // a KIND_* code of npsnn_codes.vh
    parameter integer AXIS_W    = 0,    // KIND_AXIS: 0 mixes along H, 1 along W
    parameter integer H_IN      = 8,
    parameter integer W_IN      = 8,
    parameter integer C_IN      = 48,
    parameter integer H_OUT     = 8,
    parameter integer W_OUT     = 8,
    parameter integer C_OUT     = 48,
    parameter integer KH        = 1,
    parameter integer KW        = 1,
    parameter integer SH        = 1,
    parameter integer SW        = 1,
    parameter integer PH        = 0,
    parameter integer PW        = 0,
    parameter integer IN_BITS   = 1,    // 1: spikes; 8: pixels (conv_bitplane)
    parameter integer W_BITS    = 8,    // manifest bits.weight
    parameter integer B_BITS    = 24,   // manifest bits.bias
    parameter integer ACC_BITS  = 24,   // manifest bits.acc
    parameter integer ACC_INT_W = 32,   // accumulator width: holds every partial sum exactly
    parameter integer LSH_MAX   = 16,   // largest left shift (-e) among the shifts (>= 1)
    parameter integer POLICY    = 0,
    parameter         WEIGHT_FILE = "weight.hex",
    parameter         SHIFT_FILE  = "shift.hex",
    parameter         BIAS_FILE   = "bias.hex",
    parameter         SIGN_FILE   = "sign.hex",
    // derived widths: do not override
    parameter integer IAW = (H_IN * W_IN * C_IN > 1) ? $clog2(H_IN * W_IN * C_IN) : 1,
    parameter integer OAW = (H_OUT * W_OUT * C_OUT > 1) ? $clog2(H_OUT * W_OUT * C_OUT) : 1
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,     // begin one time step (ignored while busy)
    output wire                busy,
    output reg                 done,      // one cycle, after the last output is written
    output wire [IAW-1:0]      rd_addr,
    input  wire [IN_BITS-1:0]  rd_data,
    output wire                wr_en,
    output wire [OAW-1:0]      wr_addr,
    output wire [ACC_BITS-1:0] wr_acc,
    output wire [ACC_BITS-1:0] wr_value,
    output wire                ovf_acc,   // with wr_en: this acc / value left its range
    output wire                ovf_value
);
`include "npsnn_codes.vh"
    localparam integer N_OUT  = H_OUT * W_OUT * C_OUT;
    localparam integer TOKENS = H_OUT * W_OUT;
    localparam integer W_DEPTH =
        (KIND == KIND_CONV || KIND == KIND_CONV_BITPLANE) ? C_OUT * C_IN * KH * KW :
        (KIND == KIND_AXIS) ? ((AXIS_W == 0) ? H_OUT * H_IN : W_OUT * W_IN) :
        (KIND == KIND_DENSE_TOKEN) ? H_IN * W_IN * C_OUT * C_IN : C_OUT * C_IN;
    localparam [0:0] PER_TOKEN_SHIFT = (KIND == KIND_DENSE_TOKEN) ||
                                       (KIND == KIND_DENSE_SHIFT_TOKEN);
    localparam [0:0] PER_TOKEN_BIAS  = PER_TOKEN_SHIFT || (KIND == KIND_DENSE_SIGNED_TOKEN);
    localparam [0:0] HAS_SIGN = (KIND == KIND_DENSE_SIGNED_TOKEN) ||
                                (KIND == KIND_DENSE_SHIFT_TOKEN);
    localparam integer ROWS = (KIND != KIND_AXIS) ? C_OUT : (AXIS_W == 0) ? H_OUT : W_OUT;
    localparam integer SHIFT_DEPTH = PER_TOKEN_SHIFT ? N_OUT : ROWS;
    localparam integer BIAS_DEPTH  = PER_TOKEN_BIAS ? N_OUT : ROWS;
    localparam integer SIGN_DEPTH  = HAS_SIGN ? TOKENS : 1;
    localparam integer WAW = (W_DEPTH > 1) ? $clog2(W_DEPTH) : 1;
    localparam integer SAW = (SHIFT_DEPTH > 1) ? $clog2(SHIFT_DEPTH) : 1;
    localparam integer BAW = (BIAS_DEPTH > 1) ? $clog2(BIAS_DEPTH) : 1;
    localparam integer GAW = (SIGN_DEPTH > 1) ? $clog2(SIGN_DEPTH) : 1;
    localparam integer YW = (H_IN > 1) ? $clog2(H_IN) : 1;
    localparam integer XW = (W_IN > 1) ? $clog2(W_IN) : 1;
    localparam integer CW = (C_IN > 1) ? $clog2(C_IN) : 1;
    localparam integer NW = (H_IN * W_IN > 1) ? $clog2(H_IN * W_IN) : 1;
    localparam integer HOW = (H_OUT > 1) ? $clog2(H_OUT) : 1;
    localparam integer WOW = (W_OUT > 1) ? $clog2(W_OUT) : 1;
    localparam integer COW = (C_OUT > 1) ? $clog2(C_OUT) : 1;
    localparam integer NOW = (TOKENS > 1) ? $clog2(TOKENS) : 1;

    // ---- control ------------------------------------------------------------------------
    localparam [1:0] S_IDLE = 2'd0, S_ACCUM = 2'd1, S_DRAIN = 2'd2, S_POST = 2'd3;
    reg [1:0] state;
    wire acc_ready, acc_idle, scan_finished, agu_idle;
    wire go = start & (state == S_IDLE) & acc_ready;
    assign busy = (state != S_IDLE) | ~acc_ready;
    wire sweep_start = (state == S_DRAIN) & acc_idle;
    reg  p_v, p_last;       // stage 2 of the sweep: this cycle's output, and the last one

    // ---- 1. accumulate: scanner -> address generator -> accumulator memory -------------
    wire              ev_valid, ev_ready;
    wire [YW-1:0]     ev_y;
    wire [XW-1:0]     ev_x;
    wire [CW-1:0]     ev_c;
    wire [NW-1:0]     ev_n;
    wire [IN_BITS-1:0] ev_data;
    npsnn_scan #(.H(H_IN), .W(W_IN), .C(C_IN), .DATA_W(IN_BITS)) scan (
        .clk(clk), .rst(rst), .start(go), .rd_addr(rd_addr), .rd_data(rd_data),
        .ev_valid(ev_valid), .ev_ready(ev_ready), .ev_y(ev_y), .ev_x(ev_x), .ev_c(ev_c),
        .ev_n(ev_n), .ev_data(ev_data), .finished(scan_finished));

    wire            add_v;
    wire [OAW-1:0]  add_acc;
    wire [WAW-1:0]  add_w;
    wire [2:0]      add_k;
    npsnn_agu #(.KIND(KIND), .AXIS_W(AXIS_W), .H_IN(H_IN), .W_IN(W_IN), .C_IN(C_IN),
                .H_OUT(H_OUT), .W_OUT(W_OUT), .C_OUT(C_OUT), .KH(KH), .KW(KW), .SH(SH), .SW(SW), .PH(PH),
                .PW(PW), .DATA_W(IN_BITS), .ACC_DEPTH(N_OUT), .W_DEPTH(W_DEPTH)) agu (
        .clk(clk), .rst(rst), .ev_valid(ev_valid), .ev_ready(ev_ready), .ev_y(ev_y),
        .ev_x(ev_x), .ev_c(ev_c), .ev_n(ev_n), .ev_data(ev_data), .add_v(add_v),
        .add_acc(add_acc), .add_w(add_w), .add_k(add_k), .idle(agu_idle));

    wire        sw_active;
    wire [OAW-1:0] sw_q;
    wire [HOW-1:0] sw_h;
    wire [WOW-1:0] sw_w;
    wire [COW-1:0] sw_c;
    /* verilator lint_off UNUSEDSIGNAL */   // the token index picks a sign word, if any
    wire [NOW-1:0] sw_n;
    /* verilator lint_on UNUSEDSIGNAL */
    wire signed [ACC_INT_W-1:0] acc_exact;
    npsnn_accum #(.DEPTH(N_OUT), .ACC_W(ACC_INT_W), .W_DEPTH(W_DEPTH), .W_BITS(W_BITS),
                  .WEIGHT_FILE(WEIGHT_FILE)) accum (
        .clk(clk), .rst(rst), .ready(acc_ready), .add_v(add_v), .add_acc(add_acc),
        .add_w(add_w), .add_k(add_k), .take_v(sw_active), .take_addr(sw_q),
        .take_data(acc_exact), .idle(acc_idle));

    // ---- 2. post-process every output ------------------------------------------------------
    wire p_last_issue;
    npsnn_sweep #(.H(H_OUT), .W(W_OUT), .C(C_OUT)) sweep (
        .clk(clk), .rst(rst), .start(sweep_start), .active(sw_active), .last(p_last_issue),
        .q(sw_q), .h(sw_h), .w(sw_w), .c(sw_c), .n(sw_n));

    // which shift, bias and sign word belongs to output (h, w, o)
    reg [SAW-1:0] shift_idx;
    reg [BAW-1:0] bias_idx;
    /* verilator lint_off WIDTH */   // indices from coordinates of other widths (zero-extension intended)
    always @* begin
        case (KIND)
            KIND_AXIS: begin   // the output row (along H) or column (along W)
                shift_idx = (AXIS_W == 0) ? sw_h : sw_w;
                bias_idx  = (AXIS_W == 0) ? sw_h : sw_w;
            end
            default: begin
                shift_idx = PER_TOKEN_SHIFT ? sw_q : sw_c;
                bias_idx  = PER_TOKEN_BIAS ? sw_q : sw_c;
            end
        endcase
    end
    /* verilator lint_on WIDTH */

    reg signed [7:0]        shift_rom [0:SHIFT_DEPTH-1];
    reg signed [B_BITS-1:0] bias_rom  [0:BIAS_DEPTH-1];
    initial $readmemh(SHIFT_FILE, shift_rom);
    initial $readmemh(BIAS_FILE, bias_rom);
    reg signed [7:0]        e;
    reg signed [B_BITS-1:0] bias;
    reg [OAW-1:0]           p_q;
    always @(posedge clk) begin
        // sweep stage 1: read the output's shift and bias (stage 2 is below)
        e <= shift_rom[shift_idx];
        bias <= bias_rom[bias_idx];
        p_v <= sw_active & ~rst;
        p_q <= sw_q;
        p_last <= p_last_issue;
        // control
        done <= 1'b0;
        if (rst) state <= S_IDLE;
        else case (state)
            S_IDLE:  if (go) state <= S_ACCUM;
            S_ACCUM: if (scan_finished & agu_idle) state <= S_DRAIN;
            S_DRAIN: if (acc_idle) state <= S_POST;
            default: if (p_v & p_last) begin state <= S_IDLE; done <= 1'b1; end
        endcase
    end

    wire signed [1:0] sign;   // +1 for the kinds without a sign table
    generate
        if (HAS_SIGN) begin : token_sign
            reg signed [1:0] sign_rom [0:SIGN_DEPTH-1];
            initial $readmemh(SIGN_FILE, sign_rom);
            reg signed [1:0] sign_rd;
            wire [GAW-1:0] sign_idx = sw_n[GAW-1:0];
            always @(posedge clk) sign_rd <= sign_rom[sign_idx];
            assign sign = sign_rd;
        end else begin : no_sign
            assign sign = 2'sb01;
        end
    endgenerate

    localparam integer Y_W = ACC_BITS + LSH_MAX + 2;         // rshift result
    localparam integer V_W = ((Y_W > B_BITS) ? Y_W : B_BITS) + 2;
    wire signed [ACC_BITS-1:0] acc;
    npsnn_range_check #(.IN_W(ACC_INT_W), .OUT_W(ACC_BITS), .POLICY(POLICY)) check_acc (
        .value(acc_exact), .checked(acc), .overflow(ovf_acc));
    wire signed [Y_W-1:0] r;
    npsnn_rshift #(.IN_W(ACC_BITS), .LSH_MAX(LSH_MAX)) round (.a(acc), .e(e), .y(r));
    wire signed [V_W-1:0] r_ext    = {{(V_W-Y_W){r[Y_W-1]}}, r};
    wire signed [V_W-1:0] bias_ext = {{(V_W-B_BITS){bias[B_BITS-1]}}, bias};
    wire signed [V_W-1:0] signed_r = (sign == 2'sb01) ? r_ext :
                                     (sign == 2'sb11) ? -r_ext : {V_W{1'b0}};
    wire signed [ACC_BITS-1:0] value;
    npsnn_range_check #(.IN_W(V_W), .OUT_W(ACC_BITS), .POLICY(POLICY)) check_value (
        .value(signed_r + bias_ext), .checked(value), .overflow(ovf_value));

    assign wr_en    = p_v;
    assign wr_addr  = p_q;
    assign wr_acc   = acc;
    assign wr_value = value;
endmodule
