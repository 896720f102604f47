// Integer leaky integrate-and-fire neurons ("lif" op, docs/golden-model.md, section 4.3),
// one time step per `start`, one neuron per cycle in row-major order:
//
//   X = range_check(current, MEM_BITS)        -> wr_current
//   H = V + ((X - V) >>> LEAK)                -> wr_h      (floor shift; tau = 2^LEAK)
//   S = H >= theta                            -> wr_spike  (a membrane at the threshold fires)
//   V = S ? 0 : H                             -> wr_v      (hard reset to 0)
//
// V lives in a memory of H*W*C words; `first` (with `start`) marks t = 0, where V = 0.
// theta is one word for the whole layer or one per token (TH_PER_TOKEN).
// X - V needs MEM_BITS + 1 bits; H lies between V and X, so it fits MEM_BITS again.
module npsnn_lif #(
    parameter integer H = 8,
    parameter integer W = 8,
    parameter integer C = 48,
    parameter integer IN_BITS      = 24,   // width of the incoming current (bits.acc or bits.mem)
    parameter integer MEM_BITS     = 24,
    parameter integer LEAK         = 1,
    parameter integer TH_PER_TOKEN = 0,    // threshold shape (H, W, 1) instead of (1, 1, 1)
    parameter integer POLICY       = 0,
    parameter         TH_FILE      = "threshold.hex",
    // derived width: do not override
    parameter integer AW = (H * W * C > 1) ? $clog2(H * W * C) : 1
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,
    input  wire                first,
    output wire                busy,
    output reg                 done,
    output wire [AW-1:0]       rd_addr,
    input  wire [IN_BITS-1:0]  rd_data,
    output wire                wr_en,
    output wire [AW-1:0]       wr_addr,
    output wire [MEM_BITS-1:0] wr_current,
    output wire [MEM_BITS-1:0] wr_h,
    output wire [MEM_BITS-1:0] wr_v,
    output wire                wr_spike,
    output wire                ovf_current
);
    localparam integer N = H * W * C;
    localparam [0:0]   PER_TOKEN = (TH_PER_TOKEN != 0);
    localparam integer TH_DEPTH = PER_TOKEN ? H * W : 1;
    localparam integer TAW = (TH_DEPTH > 1) ? $clog2(TH_DEPTH) : 1;
    localparam integer NW_ = (H * W > 1) ? $clog2(H * W) : 1;

    reg running, first_step;
    wire active, last;
    /* verilator lint_off UNUSEDSIGNAL */   // the token index picks a per-token threshold, if any
    wire [NW_-1:0] sn;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [AW-1:0]  q;
    wire go = start & ~running;
    /* verilator lint_off PINCONNECTEMPTY */   // the flat index and the token are all a LIF needs
    npsnn_sweep #(.H(H), .W(W), .C(C)) sweep (
        .clk(clk), .rst(rst), .start(go), .active(active), .last(last), .q(q), .h(),
        .w(), .c(), .n(sn));
    /* verilator lint_on PINCONNECTEMPTY */
    assign rd_addr = q;
    assign busy = running;

    reg signed [MEM_BITS-1:0] v_mem  [0:N-1];
    reg signed [MEM_BITS-1:0] th_rom [0:TH_DEPTH-1];
    initial $readmemh(TH_FILE, th_rom);
    wire [TAW-1:0] th_idx;
    generate
        if (PER_TOKEN) begin : per_token
            assign th_idx = sn[TAW-1:0];
        end else begin : shared
            assign th_idx = 1'b0;
        end
    endgenerate

    reg                       p_v, p_last;
    reg [AW-1:0]              p_q;
    reg signed [MEM_BITS-1:0] v_rd, theta;
    always @(posedge clk) begin
        v_rd  <= v_mem[q];
        theta <= th_rom[th_idx];
        p_v <= active & ~rst;
        p_q <= q;
        p_last <= last;
    end

    // the neuron update, on the word read in the previous cycle
    wire signed [MEM_BITS-1:0] x;
    npsnn_range_check #(.IN_W(IN_BITS), .OUT_W(MEM_BITS), .POLICY(POLICY)) check_current (
        .value(rd_data), .checked(x), .overflow(ovf_current));
    wire signed [MEM_BITS:0] v_old   = first_step ? {(MEM_BITS+1){1'b0}}
                                                  : {v_rd[MEM_BITS-1], v_rd};
    wire signed [MEM_BITS:0] x_wide  = {x[MEM_BITS-1], x};
    wire signed [MEM_BITS:0] th_wide = {theta[MEM_BITS-1], theta};
    wire signed [MEM_BITS:0] delta   = x_wide - v_old;
    wire signed [MEM_BITS:0] h_wide  = v_old + (delta >>> LEAK);
    wire                     spike   = h_wide >= th_wide;
    wire signed [MEM_BITS-1:0] v_new = spike ? {MEM_BITS{1'b0}} : h_wide[MEM_BITS-1:0];

    always @(posedge clk) begin
        if (p_v) v_mem[p_q] <= v_new;
        done <= 1'b0;
        if (rst) begin
            running <= 1'b0; first_step <= 1'b0;
        end else if (go) begin
            running <= 1'b1; first_step <= first;
        end else if (p_v & p_last) begin
            running <= 1'b0; done <= 1'b1;
        end
    end

    assign wr_en      = p_v;
    assign wr_addr    = p_q;
    assign wr_current = x;
    assign wr_h       = h_wide[MEM_BITS-1:0];
    assign wr_v       = v_new;
    assign wr_spike   = spike;
endmodule
