/**
 * One node of the cluster as an operating-system process: `node bin/run.js serve --data-dir ...`,
 * or any program given with `--bin`. Parses its stdout into messages, appends its stderr to a log
 * file that lasts across restarts, and carries out the nemesis's kill / pause / resume.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface NodeSpec {
  id: string;
  /** The program (an absolute path): `process.execPath` for raftsnap's own node, or `--bin`. */
  command: string;
  /** Its arguments (`<bin/run.js> serve --data-dir ...`, or what followed `--bin PATH --`). */
  args: string[];
  /** Working directory (default: the runner's). */
  cwd?: string;
  env: Record<string, string>;
  logPath: string;
}

export interface ExitInfo {
  id: string;
  incarnation: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the runner killed it (nemesis) or it exited after its stdin was closed. */
  expected: boolean;
  /** Milliseconds since the run started. */
  at: number;
}

export type NodeState = 'down' | 'up' | 'paused';

/**
 * Events: `message` (obj: Record<string, unknown>), `bad-line` (line: string), `exit` (ExitInfo).
 */
export class NodeProcess extends EventEmitter {
  readonly id: string;
  state: NodeState = 'down';
  incarnation = 0;
  private child: ChildProcess | null = null;
  private expectExit = false;
  private readonly log: WriteStream;
  private exitWaiters: Array<() => void> = [];

  constructor(
    private readonly spec: NodeSpec,
    private readonly clock: () => number,
  ) {
    super();
    this.id = spec.id;
    this.log = createWriteStream(spec.logPath, { flags: 'a' });
    this.log.on('error', () => {
      /* a log that cannot be written must not stop the run */
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.child) throw new Error(`${this.id} is already running`);
    this.incarnation++;
    this.expectExit = false;
    this.log.write(`--- raftsnap cluster: starting ${this.id} (incarnation ${this.incarnation}) at ${this.clock().toFixed(0)} ms\n`);
    const child = spawn(this.spec.command, this.spec.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
      env: { ...process.env, ...this.spec.env },
    });
    this.child = child;
    this.state = 'up';
    const incarnation = this.incarnation;
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          this.emit('bad-line', line);
          continue;
        }
        if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) this.emit('bad-line', line);
        else this.emit('message', msg as Record<string, unknown>);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (!this.log.writableEnded) this.log.write(chunk);
    });
    child.stdin!.on('error', () => {
      /* EPIPE after a kill: the message is lost, like on a real network */
    });
    child.on('error', (err) => {
      this.log.write(`--- raftsnap cluster: could not start ${this.id}: ${err.message}\n`);
    });
    child.on('close', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.state = 'down';
      const info: ExitInfo = { id: this.id, incarnation, code, signal, expected: this.expectExit, at: this.clock() };
      this.log.write(
        `--- raftsnap cluster: ${this.id} exited (code ${code}, signal ${signal}) at ${info.at.toFixed(0)} ms${info.expected ? '' : ' UNEXPECTEDLY'}\n`,
      );
      const waiters = this.exitWaiters;
      this.exitWaiters = [];
      for (const w of waiters) w();
      this.emit('exit', info);
    });
  }

  /** Writes one message to the node's stdin. False when the node is down (the message is lost). */
  send(msg: unknown): boolean {
    const c = this.child;
    if (!c || !c.stdin || c.stdin.destroyed || !c.stdin.writable) return false;
    c.stdin.write(JSON.stringify(msg) + '\n');
    return true;
  }

  kill(): void {
    if (!this.child) return;
    this.expectExit = true;
    this.child.kill('SIGKILL');
  }

  pause(): void {
    if (!this.child || this.state !== 'up') return;
    this.child.kill('SIGSTOP');
    this.state = 'paused';
  }

  resume(): void {
    if (!this.child || this.state !== 'paused') return;
    this.child.kill('SIGCONT');
    this.state = 'up';
  }

  /** Closes stdin (the node should finish and exit 0 by itself). */
  closeStdin(): void {
    if (!this.child) return;
    this.expectExit = true;
    this.resume();
    this.child.stdin?.end();
  }

  /** Resolves when the process is gone, or false after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.child) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  closeLog(): Promise<void> {
    return new Promise((resolve) => this.log.end(resolve));
  }
}
