/** Logging to stderr (stdout carries protocol messages only). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

export function stderrLogger(level: 'quiet' | 'info' | 'debug', prefix = ''): Logger {
  const out = (msg: string): void => {
    process.stderr.write(`${prefix}${msg}\n`);
  };
  return {
    info: level === 'quiet' ? () => {} : out,
    warn: out,
    debug: level === 'debug' ? out : () => {},
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, debug() {} };
