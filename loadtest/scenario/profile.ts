/**
 * Where the CPU goes during a run, by component, from Linux's /proc: every second the CPU time of each
 * process tree the run started (the worker: wrangler/miniflare + workerd; the stack: Postgres, Redis and
 * the Node process of the Neon proxy and Upstash shim), of the load generator itself, and of the whole
 * machine (so the share taken by other work on a shared machine shows too). 100 % = one core.
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, clock ticks. */
  ticks: number;
}

const HZ = 100; // USER_HZ on Linux

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const f = text.slice(close + 2).split(" ");
    // Fields after "(comm) ": state(0) ppid(1) … utime(11) stime(12)
    return { pid, ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = readStat(pid);
    if (s) out.push(s);
  }
  return out;
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const n = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  const total = n.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface CpuSample {
  t: number;
  /** Per component, % of one core over the last interval. */
  components: Record<string, number>;
  /** Busy % of the whole machine (all cores; 100 × cores = saturated). */
  machine: number;
  load1: number;
}

export interface CpuProfileSummary {
  cores: number;
  samples: CpuSample[];
  /** Mean % of one core per component over the measured samples. */
  mean: Record<string, number>;
  /** Mean per process name (comm) inside the run's trees, e.g. workerd, postgres, node. */
  byProcess: Record<string, number>;
  machineMean: number;
  loadAverage: number[];
}

export class CpuProfiler {
  private readonly roots: { component: string; pid: number }[];
  private prev = new Map<number, number>();
  private prevMachine = machineTicks();
  private prevAt = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private measuring = false;
  private readonly started = Date.now();
  readonly samples: CpuSample[] = [];
  private readonly byComm = new Map<string, number>();
  private measuredSeconds = 0;

  constructor(roots: { component: string; pid: number }[]) {
    this.roots = roots.filter((r) => r.pid > 0);
  }

  start(): void {
    this.snapshot();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  /** Samples taken while measuring go into the means; the others only into the timeline. */
  measure(on: boolean): void {
    this.measuring = on;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private snapshot(): ProcStat[] {
    const procs = allProcesses();
    return procs;
  }

  private sample(): void {
    const now = Date.now();
    const seconds = (now - this.prevAt) / 1000;
    const procs = allProcesses();
    const children = new Map<number, ProcStat[]>();
    for (const p of procs) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    }
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const delta = (p: ProcStat) => {
      const before = this.prev.get(p.pid);
      return before === undefined ? 0 : Math.max(0, p.ticks - before);
    };
    const components: Record<string, number> = {};
    const seen = new Set<number>();
    for (const root of this.roots) {
      let ticks = 0;
      const stack = [root.pid];
      while (stack.length > 0) {
        const pid = stack.pop() as number;
        if (seen.has(pid)) continue;
        seen.add(pid);
        const p = byPid.get(pid);
        if (p) {
          const d = delta(p);
          ticks += d;
          if (this.measuring) this.byComm.set(p.comm, (this.byComm.get(p.comm) ?? 0) + d);
        }
        for (const c of children.get(pid) ?? []) stack.push(c.pid);
      }
      components[root.component] = round1((ticks / HZ / seconds) * 100);
    }
    const self = byPid.get(process.pid);
    components["load generator (this process)"] = self ? round1((delta(self) / HZ / seconds) * 100) : 0;
    const m = machineTicks();
    const machineBusy =
      ((m.busy - this.prevMachine.busy) / Math.max(1, m.total - this.prevMachine.total)) *
      100 *
      os.cpus().length;
    const ours = Object.values(components).reduce((a, b) => a + b, 0);
    components["other work on the machine"] = round1(Math.max(0, machineBusy - ours));
    this.prevMachine = m;
    this.prev = new Map(procs.map((p) => [p.pid, p.ticks]));
    this.prevAt = now;
    const s: CpuSample = {
      t: Math.round((now - this.started) / 1000),
      components,
      machine: round1(machineBusy),
      load1: round1(os.loadavg()[0] ?? 0),
    };
    this.samples.push(s);
    if (this.measuring) {
      this.measuredSeconds += seconds;
      (s as CpuSample & { measured?: boolean }).measured = true;
    }
  }

  summary(): CpuProfileSummary {
    const measured = this.samples.filter((s) => (s as CpuSample & { measured?: boolean }).measured);
    const use = measured.length > 0 ? measured : this.samples;
    const mean: Record<string, number> = {};
    for (const s of use)
      for (const [k, v] of Object.entries(s.components)) mean[k] = (mean[k] ?? 0) + v / use.length;
    for (const k of Object.keys(mean)) mean[k] = round1(mean[k] as number);
    const byProcess: Record<string, number> = {};
    const secs = Math.max(0.001, this.measuredSeconds);
    for (const [k, v] of [...this.byComm].sort((a, b) => b[1] - a[1]))
      byProcess[k] = round1((v / HZ / secs) * 100);
    return {
      cores: os.cpus().length,
      samples: this.samples,
      mean,
      byProcess,
      machineMean: round1(use.reduce((a, s) => a + s.machine, 0) / Math.max(1, use.length)),
      loadAverage: os.loadavg().map(round1),
    };
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
