/**
 * A progress bar on stderr when it is a terminal, nothing otherwise (pipes, CI, tests). Drawn
 * here: loading a progress-bar package costs more start-up than a small command's work.
 */

export interface Progress {
  update(done: number): void;
  stop(): void;
}

const silent: Progress = { update() {}, stop() {} };

/** At most this often (ms) the bar is redrawn. */
const REDRAW_MS = 100;

export function startProgress(label: string, total: number, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled || total <= 0) return silent;
  const out = process.stderr;
  const start = Date.now();
  let last = 0;
  const draw = (done: number) => {
    const cols = Math.max(20, Math.min(out.columns ?? 80, 100) - label.length - 30);
    const frac = Math.min(1, done / total);
    const fill = Math.round(frac * cols);
    const secs = ((Date.now() - start) / 1000).toFixed(1);
    out.write(`\r${label} [${'#'.repeat(fill)}${'-'.repeat(cols - fill)}] ${Math.floor(frac * 100)}% ${done}/${total} ${secs}s`);
  };
  draw(0);
  return {
    update(done) {
      const now = Date.now();
      if (now - last < REDRAW_MS) return;
      last = now;
      draw(done);
    },
    stop() {
      draw(total);
      out.write('\n');
    },
  };
}
