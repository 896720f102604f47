// Accumulator memory with its weight ROM: acc[a] += W[w] << k, one per cycle, and a
// read-and-clear port for the post-processing sweep.
//
//   cycle 1: read acc[a] and W[w] (synchronous reads: block RAMs)
//   cycle 2: sum = acc[a] + (W[w] << k), written back to acc[a]
// When two consecutive accumulations hit the same address, the second one read the
// memory while the first was being written, so it takes the first one's sum instead
// (forwarding). ACC_W must hold every partial sum exactly (the replay derives it from
// the weights), so the range check after the sweep sees the exact sum.
// After reset the memory is cleared (DEPTH cycles, `ready` low); `take` reads a word and
// clears it, so every time step starts from zero. `take` is only used when `idle`.
module npsnn_accum #(
    parameter integer DEPTH   = 64,
    parameter integer ACC_W   = 32,
    parameter integer W_DEPTH = 64,
    parameter integer W_BITS  = 8,
    parameter         WEIGHT_FILE = "weight.hex",
    // derived widths: do not override
    parameter integer DAW = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    parameter integer WAW = (W_DEPTH > 1) ? $clog2(W_DEPTH) : 1
) (
    input  wire                    clk,
    input  wire                    rst,
    output reg                     ready,
    input  wire                    add_v,
    input  wire [DAW-1:0]          add_acc,
    input  wire [WAW-1:0]          add_w,
    input  wire [2:0]              add_k,
    input  wire                    take_v,
    input  wire [DAW-1:0]          take_addr,
    output wire signed [ACC_W-1:0] take_data,   // valid the cycle after take_v
    output wire                    idle
);
    reg signed [ACC_W-1:0]  acc [0:DEPTH-1];
    reg signed [W_BITS-1:0] weight [0:W_DEPTH-1];
    initial $readmemh(WEIGHT_FILE, weight);

    localparam integer END = DEPTH - 1;
    localparam [DAW-1:0] LAST = END[DAW-1:0];
    reg [DAW-1:0] clear_addr;
    reg           v1, v2, taken;
    reg [DAW-1:0] a1, a2;
    reg [2:0]     k1;
    reg signed [ACC_W-1:0]  acc_rd, sum2;
    reg signed [W_BITS-1:0] w_rd;
    // the word read for `take`, and zero otherwise: the post-processing logic behind it
    // then switches only during the sweep (operand isolation)
    assign take_data = taken ? acc_rd : {ACC_W{1'b0}};
    assign idle = ~v1 & ~v2 & ready;

    // One clocked process; `sum` is this cycle's adder output (a blocking temporary, so
    // simulators evaluate the datapath once per cycle instead of net by net).
    reg signed [ACC_W-1:0] sum;
    /* verilator lint_off BLKSEQ */   // `sum`: the blocking temporary described above
    always @(posedge clk) begin
        // cycle 2 of an accumulation: add the weight read in cycle 1 and write back
        if (v1) begin
            sum = ((v2 && a2 == a1) ? sum2 : acc_rd) +
                  ({{(ACC_W-W_BITS){w_rd[W_BITS-1]}}, w_rd} <<< k1);
            acc[a1] <= sum;
            sum2 <= sum;
        end else if (!ready) begin
            acc[clear_addr] <= {ACC_W{1'b0}};
        end else if (take_v) begin
            acc[take_addr] <= {ACC_W{1'b0}};
        end
        // cycle 1: synchronous reads (one read port on each memory)
        acc_rd <= acc[take_v ? take_addr : add_acc];
        w_rd <= weight[add_w];
        taken <= take_v;
        v1 <= add_v & ready; a1 <= add_acc; k1 <= add_k;
        v2 <= v1; a2 <= a1;
        if (rst) begin
            ready <= 1'b0; clear_addr <= {DAW{1'b0}}; v1 <= 1'b0; v2 <= 1'b0;
        end else if (!ready) begin
            clear_addr <= clear_addr + 1'b1;
            if (clear_addr == LAST) ready <= 1'b1;
        end
    end
    /* verilator lint_on BLKSEQ */
endmodule
