// Plain-Verilog, self-checking testbench of one exported term layer (no Python, no cocotb):
// the layer's parameters, its exported input spikes (or pixels) and its expected `acc` and
// `value` fields are read with $readmemh from the export's hex files; every time step is
// run and every word the RTL writes is compared with the export. Prints
//   PASS: all N values match
// or FAIL with the first mismatch (t, index, field, expected, got) and the count, then
// stops with $fatal. Runs under Icarus Verilog and `verilator --binary`.
//
// Every parameter comes from the export's manifest; `python -m npsnn hw tb --vectors DIR
// --layer NAME` prints both command lines (docs/hardware.md shows one spelled out):
//   Icarus:        iverilog -g2005 -I hw/rtl -s tb_term -Ptb_term.KIND=3 ... -o tb.vvp \
//                  hw/rtl/*.v hw/tb/tb_term.v && vvp -n tb.vvp
//   or, Verilator: verilator --binary -Ihw/rtl --top-module tb_term -GKIND=3 ... \
//                  hw/rtl/*.v hw/tb/tb_term.v && obj_dir/Vtb_term
module tb_term #(
    // the layer (as in hw/rtl/npsnn_term.v)
    parameter integer KIND      = 3,
    parameter integer AXIS_W    = 0,
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
    parameter integer IN_BITS   = 1,
    parameter integer W_BITS    = 8,
    parameter integer B_BITS    = 24,
    parameter integer ACC_BITS  = 24,
    parameter integer ACC_INT_W = 32,
    parameter integer LSH_MAX   = 16,
    parameter integer POLICY    = 0,
    parameter         WEIGHT_FILE = "weight.hex",
    parameter         SHIFT_FILE  = "shift.hex",
    parameter         BIAS_FILE   = "bias.hex",
    parameter         SIGN_FILE   = "sign.hex",
    // the vectors: T time steps of one image (1 for the static first layer)
    parameter integer STEPS       = 4,
    parameter         INPUT_FILE  = "input.hex",     // vectors_hex/img<k>/<op>.input.hex
    parameter         ACC_FILE    = "acc.hex",       // vectors_hex/img<k>/<op>.acc.hex
    parameter         VALUE_FILE  = "value.hex"      // vectors_hex/img<k>/<op>.value.hex
);
    localparam integer N_IN  = H_IN * W_IN * C_IN;
    localparam integer N_OUT = H_OUT * W_OUT * C_OUT;
    localparam integer IAW = (N_IN > 1) ? $clog2(N_IN) : 1;
    localparam integer OAW = (N_OUT > 1) ? $clog2(N_OUT) : 1;

    reg clk = 1'b0;
    /* verilator lint_off BLKSEQ */      // the testbench's free-running clock
    always #5 clk = ~clk;
    /* verilator lint_on BLKSEQ */
    reg rst = 1'b1, start = 1'b0;
    wire busy, done, wr_en, ovf_acc, ovf_value;
    wire [IAW-1:0] rd_addr;
    reg  [IN_BITS-1:0] rd_data;
    wire [OAW-1:0] wr_addr;
    wire [ACC_BITS-1:0] wr_acc, wr_value;

    reg [IN_BITS-1:0]  x_mem     [0:STEPS*N_IN-1];
    reg [ACC_BITS-1:0] acc_mem   [0:STEPS*N_OUT-1];
    reg [ACC_BITS-1:0] value_mem [0:STEPS*N_OUT-1];
    initial begin
        $readmemh(INPUT_FILE, x_mem);
        $readmemh(ACC_FILE, acc_mem);
        $readmemh(VALUE_FILE, value_mem);
    end

    npsnn_term #(.KIND(KIND), .AXIS_W(AXIS_W), .H_IN(H_IN), .W_IN(W_IN), .C_IN(C_IN),
                 .H_OUT(H_OUT), .W_OUT(W_OUT), .C_OUT(C_OUT), .KH(KH), .KW(KW), .SH(SH),
                 .SW(SW), .PH(PH), .PW(PW), .IN_BITS(IN_BITS), .W_BITS(W_BITS),
                 .B_BITS(B_BITS), .ACC_BITS(ACC_BITS), .ACC_INT_W(ACC_INT_W),
                 .LSH_MAX(LSH_MAX), .POLICY(POLICY), .WEIGHT_FILE(WEIGHT_FILE),
                 .SHIFT_FILE(SHIFT_FILE), .BIAS_FILE(BIAS_FILE), .SIGN_FILE(SIGN_FILE)) dut (
        .clk(clk), .rst(rst), .start(start), .busy(busy), .done(done), .rd_addr(rd_addr),
        .rd_data(rd_data), .wr_en(wr_en), .wr_addr(wr_addr), .wr_acc(wr_acc),
        .wr_value(wr_value), .ovf_acc(ovf_acc), .ovf_value(ovf_value));

    // the input map of step t behind a synchronous read port, and the checker
    integer t = 0, checked = 0, errors = 0;
    /* verilator lint_off UNUSEDSIGNAL */   // only the low bits address the memories
    integer in_at, out_at;                  // word of step t in the vector memories
    /* verilator lint_on UNUSEDSIGNAL */
    always @* in_at = t * N_IN + {{(32-IAW){1'b0}}, rd_addr};
    always @* out_at = t * N_OUT + {{(32-OAW){1'b0}}, wr_addr};
    // under the error policy the exported vectors never overflow: a raised flag means the
    // RTL would stop where the golden model does not
    wire flagged   = (POLICY == 0) && (ovf_acc || ovf_value);
    wire acc_bad   = wr_acc !== acc_mem[out_at];
    wire value_bad = wr_value !== value_mem[out_at];
    always @(posedge clk) begin
        rd_data <= x_mem[in_at];
        if (wr_en) begin
            if (errors != 0)
                ;                           // only the first wrong word is printed
            else if (acc_bad)
                $display("FAIL: first mismatch: t=%0d, index=%0d (flat), field 'acc': %s %0d, got %0d",
                         t, wr_addr, "expected", $signed(acc_mem[out_at]), $signed(wr_acc));
            else if (value_bad)
                $display("FAIL: first mismatch: t=%0d, index=%0d (flat), field 'value': %s %0d, got %0d",
                         t, wr_addr, "expected", $signed(value_mem[out_at]), $signed(wr_value));
            else if (flagged)
                $display("FAIL: first mismatch: t=%0d, index=%0d (flat): the overflow flag is raised",
                         t, wr_addr);
            errors <= errors + {31'd0, acc_bad} + {31'd0, value_bad} + {31'd0, flagged};
            checked <= checked + 2;
        end
    end

    initial begin
        repeat (3) @(posedge clk);
        rst = 1'b0;
        @(negedge clk);
        while (busy) @(negedge clk);              // accumulators clear after reset
        for (t = 0; t < STEPS; t = t + 1) begin
            start = 1'b1;
            @(negedge clk);
            start = 1'b0;
            while (!done) @(negedge clk);        // done: one cycle after the last write
        end
        t = STEPS - 1;
        if (errors == 0 && checked == 2 * STEPS * N_OUT) begin
            $display("PASS: all %0d values match", checked);
            $finish;
        end else begin
            $display("FAIL: %0d of %0d values differ (%0d expected)", errors, checked,
                     2 * STEPS * N_OUT);
            $fatal(1, "tb_term: the RTL does not reproduce the exported vectors");
        end
    end
endmodule
