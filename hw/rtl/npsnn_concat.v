// Channel concatenation ("concat" op, docs/golden-model.md, section 4.2): the output at
// position n is src_0[n, :], then src_1[n, :], ... Walking the output in row-major order
// visits every source in its own row-major order, so each source is read through its own
// port by a plain counter: no address arithmetic. One element per cycle, up to 4 sources
// (source j has C_j channels; C_j = 0 for j >= N_SRC).
module npsnn_concat #(
    parameter integer H      = 4,
    parameter integer W      = 4,
    parameter integer N_SRC  = 3,
    parameter integer C0     = 32,
    parameter integer C1     = 32,
    parameter integer C2     = 32,
    parameter integer C3     = 0,
    parameter integer DATA_W = 24,
    // derived widths: do not override
    parameter integer C  = C0 + C1 + C2 + C3,
    parameter integer AW = (H * W * C > 1) ? $clog2(H * W * C) : 1
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire                      start,
    output wire                      busy,
    output reg                       done,
    output wire [N_SRC*AW-1:0]       rd_addr,    // source j: bits [j*AW +: AW]
    input  wire [N_SRC*DATA_W-1:0]   rd_data,
    output reg                       wr_en,
    output reg  [AW-1:0]             wr_addr,
    output wire [DATA_W-1:0]         wr_value
);
    localparam integer CW = (C > 1) ? $clog2(C) : 1;
    localparam integer SW = (N_SRC > 1) ? $clog2(N_SRC) : 1;
    // the first channel of sources 1, 2, 3
    localparam integer E1 = C0, E2 = C0 + C1, E3 = C0 + C1 + C2;
    localparam [CW:0] EDGE1 = E1[CW:0], EDGE2 = E2[CW:0], EDGE3 = E3[CW:0];
    reg running;
    wire active, last;
    wire [AW-1:0] q;
    wire [CW-1:0] c;
    wire go = start & ~running;
    /* verilator lint_off PINCONNECTEMPTY */   // only the flat index and the channel are needed
    npsnn_sweep #(.H(H), .W(W), .C(C)) sweep (
        .clk(clk), .rst(rst), .start(go), .active(active), .last(last), .q(q), .h(), .w(),
        .c(c), .n());
    /* verilator lint_on PINCONNECTEMPTY */
    assign busy = running;

    // the source that channel c comes from
    localparam integer I1 = 1, I2 = 2, I3 = 3;
    localparam [SW-1:0] SRC1 = I1[SW-1:0], SRC2 = I2[SW-1:0], SRC3 = I3[SW-1:0];
    wire [CW:0] c_ext = {1'b0, c};
    wire [SW-1:0] src = (N_SRC > 3 && c_ext >= EDGE3) ? SRC3 :
                        (N_SRC > 2 && c_ext >= EDGE2) ? SRC2 :
                        (N_SRC > 1 && c_ext >= EDGE1) ? SRC1 : {SW{1'b0}};

    // one read counter per source: it moves on every time its source is read
    reg [AW-1:0] next_rd [0:N_SRC-1];
    genvar g;
    generate
        for (g = 0; g < N_SRC; g = g + 1) begin : port
            assign rd_addr[g*AW +: AW] = next_rd[g];
        end
    endgenerate
    integer k;
    reg [SW-1:0] wr_src;
    reg          wr_last;
    wire [DATA_W-1:0] word [0:N_SRC-1];      // the sources' words: a multiplexer picks one
    generate
        for (g = 0; g < N_SRC; g = g + 1) begin : words
            assign word[g] = rd_data[g*DATA_W +: DATA_W];
        end
    endgenerate
    assign wr_value = word[wr_src];
    always @(posedge clk) begin
        wr_en <= active & ~rst;
        wr_addr <= q;
        wr_src <= src;
        wr_last <= last;
        done <= 1'b0;
        if (rst | go)
            for (k = 0; k < N_SRC; k = k + 1) next_rd[k] <= {AW{1'b0}};
        else if (active)
            next_rd[src] <= next_rd[src] + 1'b1;
        if (rst) running <= 1'b0;
        else if (go) running <= 1'b1;
        else if (wr_en & wr_last) begin running <= 1'b0; done <= 1'b1; end
    end
endmodule
