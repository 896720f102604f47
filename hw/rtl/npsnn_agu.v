// Address generator: expands one input event into the accumulations it causes
// (docs/golden-model.md, section 4.1, "event-driven reading"). Per event it visits
// groups, and per group it issues LANES accumulations acc[a] += W[w] << k, one per
// cycle, with a and w stepping by constants:
//
//   kind                   groups                         a (first, step)          w (first, step)               lanes
//   conv                   kernel offsets (r, s) that     ((i Wo + j) Co, 1)        ((c KH + r) KW + s, Ci KH KW)  Co
//                          reach an output (i, j)
//   conv_bitplane          ... x the set bits k of the    (same)                    (same), added << k            Co
//                          pixel
//   axis, AXIS_W = 0 (S=H) 1                              (x Co + c, Wo Co)         (y, S)       W[p, y]          S
//   axis, AXIS_W = 1 (S=W) 1                              (y Wo Co + c, Co)         (x, S)       W[p, x]          S
//   dense, *signed/shift*  1                              (n Co, 1)                 (c, Ci)      W[o, c]          Co
//   dense_token            1                              (n Co, 1)                 (n Co Ci + c, Ci)             Co
//   head                   1                              (0, 1)                    (c, Ci)      W[k, c]          Co
//
// where the event is at (y, x, c), n = y W + x, and a conv offset (r, s) reaches output
// i = (y + PH - r) / SH when that division is exact and 0 <= i < Ho (likewise j).
// Offsets are enumerated as r = (y + PH) mod SH + m SH, i = (y + PH) div SH - m.
module npsnn_agu #(
    parameter integer KIND   = 3,
    parameter integer AXIS_W = 0,      // KIND_AXIS: 0 mixes along H (S = H), 1 along W
    parameter integer H_IN   = 8,
    parameter integer W_IN   = 8,
    parameter integer C_IN   = 48,
    parameter integer H_OUT  = 8,
    parameter integer W_OUT  = 8,
    parameter integer C_OUT  = 48,
    parameter integer KH     = 1,
    parameter integer KW     = 1,
    parameter integer SH     = 1,
    parameter integer SW     = 1,
    parameter integer PH     = 0,
    parameter integer PW     = 0,
    parameter integer DATA_W = 1,
    parameter integer ACC_DEPTH = 1,   // accumulators: H_OUT W_OUT C_OUT (head: C_OUT)
    parameter integer W_DEPTH   = 1,   // weight words
    // derived widths: do not override
    parameter integer YW  = (H_IN > 1) ? $clog2(H_IN) : 1,
    parameter integer XW  = (W_IN > 1) ? $clog2(W_IN) : 1,
    parameter integer CW  = (C_IN > 1) ? $clog2(C_IN) : 1,
    parameter integer NW  = (H_IN * W_IN > 1) ? $clog2(H_IN * W_IN) : 1,
    parameter integer DAW = (ACC_DEPTH > 1) ? $clog2(ACC_DEPTH) : 1,
    parameter integer WAW = (W_DEPTH > 1) ? $clog2(W_DEPTH) : 1
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              ev_valid,
    output wire              ev_ready,
    input  wire [YW-1:0]     ev_y,
    input  wire [XW-1:0]     ev_x,
    input  wire [CW-1:0]     ev_c,
    input  wire [NW-1:0]     ev_n,
    input  wire [DATA_W-1:0] ev_data,
    output reg               add_v,
    output reg  [DAW-1:0]    add_acc,
    output reg  [WAW-1:0]    add_w,
    output reg  [2:0]        add_k,
    output wire              idle
);
`include "npsnn_codes.vh"
    localparam [0:0] IS_CONV = (KIND == KIND_CONV) || (KIND == KIND_CONV_BITPLANE);
    localparam integer M_R = IS_CONV ? (KH + SH - 1) / SH : 1;   // offset candidates per axis
    localparam integer M_S = IS_CONV ? (KW + SW - 1) / SW : 1;
    localparam integer NB  = (KIND == KIND_CONV_BITPLANE) ? 8 : 1; // bit planes
    localparam [0:0] AXIS_H = (KIND == KIND_AXIS) && (AXIS_W == 0);
    localparam [0:0] AXIS_V = (KIND == KIND_AXIS) && (AXIS_W != 0);
    localparam integer LANES = AXIS_H ? H_OUT : AXIS_V ? W_OUT : C_OUT;
    localparam integer ACC_STEP = AXIS_H ? W_OUT * C_OUT : AXIS_V ? C_OUT : 1;
    localparam integer W_STEP = IS_CONV ? C_IN * KH * KW : AXIS_H ? H_IN : AXIS_V ? W_IN : C_IN;
    localparam integer MW = (M_R * M_S * NB > 1) ? $clog2(M_R * M_S * NB + 1) : 1;
    localparam integer LW = (LANES > 1) ? $clog2(LANES) : 1;
    localparam integer L_END = LANES - 1;
    localparam [LW-1:0]  L_LAST = L_END[LW-1:0];
    localparam [DAW-1:0] ACC_STEP_A = ACC_STEP[DAW-1:0];
    localparam [WAW-1:0] W_STEP_A = W_STEP[WAW-1:0];

    localparam [1:0] S_IDLE = 2'd0, S_GROUP = 2'd1, S_LANES = 2'd2;
    reg [1:0] state;
    assign ev_ready = (state == S_IDLE);
    assign idle = (state == S_IDLE) & ~add_v;

    // the event being expanded
    reg [YW-1:0]     y;
    reg [XW-1:0]     x;
    reg [CW-1:0]     c;
    reg [NW-1:0]     n;
    reg [DATA_W-1:0] data;
    // group counters (bit plane fastest, then kernel column, then kernel row) and lanes
    reg [MW-1:0] mr, ms;
    reg [2:0]    kb, k_cur;
    reg [LW-1:0] lane;
    reg          last_group;
    wire         bit_set;          // bit kb of a pixel (spikes: the spike itself)
    generate
        if (DATA_W >= 8) begin : planes
            assign bit_set = data[kb];
        end else begin : spikes
            assign bit_set = data[0];
        end
    endgenerate

    // ---- the current group: is it live, and where do its lanes start? ------------------
    // Address arithmetic in 32-bit integers (constants and small counters; synthesis keeps
    // only the bits the addresses need). x * K for a constant K is written as the sum of x
    // shifted by K's set bits, so it stays adders: the design has no multiplier at all
    // (no DSP block is inferred, even for addresses).
    function integer times;
        input integer value;
        input integer k;                      // a constant
        integer b;
        begin
            times = 0;
            for (b = 0; b < 31; b = b + 1)
                if (k[b]) times = times + (value << b);
        end
    endfunction
    integer ry, rx, r, s, i, j;
    /* verilator lint_off UNUSEDSIGNAL */   // only the address bits are used
    integer a_first, w_first;
    /* verilator lint_on UNUSEDSIGNAL */
    reg live;
    /* verilator lint_off WIDTH */   // 32-bit integer arithmetic onto narrower addresses (intended)
    always @* begin
        ry = y + PH;
        rx = x + PW;
        r = ry % SH + times(mr, SH);
        s = rx % SW + times(ms, SW);
        i = ry / SH - mr;
        j = rx / SW - ms;
        live = 1'b1;
        a_first = 0;
        w_first = 0;
        case (KIND)
            KIND_CONV, KIND_CONV_BITPLANE: begin
                live = (r < KH) && (s < KW) && (i >= 0) && (i < H_OUT) && (j >= 0) &&
                       (j < W_OUT) && bit_set;
                a_first = times(times(i, W_OUT) + j, C_OUT);
                w_first = times(times(c, KH) + r, KW) + s;
            end
            KIND_AXIS: if (AXIS_W == 0) begin a_first = times(x, C_OUT) + c; w_first = y; end
                       else begin a_first = times(y, W_OUT * C_OUT) + c;       w_first = x; end
            KIND_DENSE_TOKEN: begin
                a_first = times(n, C_OUT);
                w_first = times(n, C_OUT * C_IN) + c;
            end
            KIND_HEAD:   begin a_first = 0;                     w_first = c; end
            default:     begin a_first = times(n, C_OUT);       w_first = c; end
        endcase
    end
    /* verilator lint_on WIDTH */

    // next group after (mr, ms, kb); `wrap` when the event has no more groups
    localparam integer KB_END = NB - 1, MS_END = M_S - 1, MR_END = M_R - 1;
    localparam [2:0]    KB_LAST = KB_END[2:0];
    localparam [MW-1:0] MS_LAST = MS_END[MW-1:0];
    localparam [MW-1:0] MR_LAST = MR_END[MW-1:0];
    wire kb_wrap = (kb == KB_LAST);
    wire ms_wrap = kb_wrap & (ms == MS_LAST);
    wire wrap    = ms_wrap & (mr == MR_LAST);

    always @(posedge clk) begin
        add_v <= 1'b0;
        if (rst) begin
            state <= S_IDLE;
        end else case (state)
            S_IDLE: if (ev_valid) begin
                y <= ev_y; x <= ev_x; c <= ev_c; n <= ev_n; data <= ev_data;
                mr <= {MW{1'b0}}; ms <= {MW{1'b0}}; kb <= 3'd0;
                state <= S_GROUP;
            end
            S_GROUP: begin
                kb <= kb_wrap ? 3'd0 : kb + 3'd1;
                if (kb_wrap) ms <= ms_wrap ? {MW{1'b0}} : ms + 1'b1;
                if (ms_wrap) mr <= mr + 1'b1;
                if (live) begin
                    add_acc <= a_first[DAW-1:0];
                    add_w <= w_first[WAW-1:0];
                    k_cur <= kb;
                    lane <= {LW{1'b0}};
                    last_group <= wrap;
                    state <= S_LANES;
                end else if (wrap) begin
                    state <= S_IDLE;
                end
            end
            default: begin   // S_LANES: one accumulation per cycle
                add_v <= 1'b1;
                add_k <= k_cur;
                if (lane != {LW{1'b0}}) begin
                    add_acc <= add_acc + ACC_STEP_A;
                    add_w <= add_w + W_STEP_A;
                end
                lane <= lane + 1'b1;
                if (lane == L_LAST) state <= last_group ? S_IDLE : S_GROUP;
            end
        endcase
    end
endmodule
