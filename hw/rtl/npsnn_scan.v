// Input scanner: reads an (H, W, C) map in row-major order through a synchronous read
// port (data one cycle after the address, like a block RAM) and turns every nonzero word
// (a spike, or a pixel with a set bit) into an event (y, x, c, n = y * W + x, data).
// Zero words cost one cycle each; an event waits in `ev_*` until the consumer takes it
// (ev_valid & ev_ready), and the scan stalls only when a second event arrives meanwhile.
module npsnn_scan #(
    parameter integer H      = 8,
    parameter integer W      = 8,
    parameter integer C      = 48,
    parameter integer DATA_W = 1,
    // derived widths: do not override
    parameter integer AW = (H * W * C > 1) ? $clog2(H * W * C) : 1,
    parameter integer YW = (H > 1) ? $clog2(H) : 1,
    parameter integer XW = (W > 1) ? $clog2(W) : 1,
    parameter integer CW = (C > 1) ? $clog2(C) : 1,
    parameter integer NW = (H * W > 1) ? $clog2(H * W) : 1
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              start,
    output wire [AW-1:0]     rd_addr,
    input  wire [DATA_W-1:0] rd_data,
    output reg               ev_valid,
    input  wire              ev_ready,
    output reg  [YW-1:0]     ev_y,
    output reg  [XW-1:0]     ev_x,
    output reg  [CW-1:0]     ev_c,
    output reg  [NW-1:0]     ev_n,
    output reg  [DATA_W-1:0] ev_data,
    output wire              finished      // no scan running and no event waiting
);
    localparam integer Y_END = H - 1, X_END = W - 1, C_END = C - 1;
    localparam [YW-1:0] Y_LAST = Y_END[YW-1:0];
    localparam [XW-1:0] X_LAST = X_END[XW-1:0];
    localparam [CW-1:0] C_LAST = C_END[CW-1:0];
    reg          running;
    reg          more;                    // element q still has to be presented
    reg [AW-1:0] q;                       // next element to present
    reg [YW-1:0] qy;
    reg [XW-1:0] qx;
    reg [CW-1:0] qc;
    reg [NW-1:0] qn;
    reg          dv;                      // rd_data holds element dq
    reg [AW-1:0] dq;
    reg [YW-1:0] dy;
    reg [XW-1:0] dx;
    reg [CW-1:0] dc;
    reg [NW-1:0] dn;
    wire hit     = dv & (|rd_data);
    // the word on rd_data is used up this cycle unless it is an event with nowhere to go
    wire advance = running & (~hit | ~ev_valid | ev_ready);
    // when stalled, present dq again so that rd_data still holds it next cycle
    assign rd_addr  = advance ? q : dq;
    assign finished = ~running & ~ev_valid;
    wire q_last = (qc == C_LAST) & (qx == X_LAST) & (qy == Y_LAST);

    always @(posedge clk) begin
        if (rst) begin
            running <= 1'b0; more <= 1'b0; dv <= 1'b0; ev_valid <= 1'b0;
            q <= {AW{1'b0}}; qy <= {YW{1'b0}}; qx <= {XW{1'b0}}; qc <= {CW{1'b0}};
            qn <= {NW{1'b0}};
        end else if (start) begin
            running <= 1'b1; more <= 1'b1; dv <= 1'b0;
            q <= {AW{1'b0}}; qy <= {YW{1'b0}}; qx <= {XW{1'b0}}; qc <= {CW{1'b0}};
            qn <= {NW{1'b0}};
        end else begin
            if (ev_valid & ev_ready) ev_valid <= 1'b0;
            if (advance) begin
                if (hit) begin
                    ev_valid <= 1'b1;
                    ev_y <= dy; ev_x <= dx; ev_c <= dc; ev_n <= dn; ev_data <= rd_data;
                end
                if (more) begin
                    dv <= 1'b1;
                    dq <= q; dy <= qy; dx <= qx; dc <= qc; dn <= qn;
                    more <= ~q_last;
                    q <= q + 1'b1;
                    qc <= (qc == C_LAST) ? {CW{1'b0}} : qc + 1'b1;
                    if (qc == C_LAST) begin
                        qx <= (qx == X_LAST) ? {XW{1'b0}} : qx + 1'b1;
                        qn <= qn + 1'b1;
                        if (qx == X_LAST) qy <= qy + 1'b1;
                    end
                end else begin
                    dv <= 1'b0;
                    running <= 1'b0;
                end
            end
        end
    end
endmodule
