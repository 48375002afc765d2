/**
 * Each client's last entry proposed on this leader, so that a client's read follows its own
 * earlier writes (requests.ts, answeredThrough): a client that sends a write and a read without
 * waiting for the first answer reads its write. Bounded: the `remembered` most recent clients are
 * kept; for any other the answer is the highest index among those forgotten, so it is never below
 * the client's true last index (a read may wait longer, never see less).
 */
export class ClientOrder {
  private readonly last = new Map<string, number>();
  private forgottenThrough = 0;

  constructor(private readonly remembered = 16384) {}

  /** An entry for `client` was proposed at `index`. */
  proposed(client: string, index: number): void {
    const m = this.last;
    m.delete(client); // to the back: the Map's order is recency
    m.set(client, index);
    if (m.size > this.remembered) {
      const [oldest, at] = m.entries().next().value as [string, number];
      m.delete(oldest);
      if (at > this.forgottenThrough) this.forgottenThrough = at;
    }
  }

  /** At least the index of the last entry proposed for `client` (0 when none ever was). */
  lastFor(client: string): number {
    return this.last.get(client) ?? this.forgottenThrough;
  }
}
