// Logging what repeats without flooding the log: a dead collector, a broken upstream or an outage fails every call,
// and each call is counted in a metric anyway. The log gets the first few occurrences, then one in `every`.

export class LogThrottle {
  private n = 0;

  constructor(
    private readonly first = 5,
    private readonly every = 100,
  ) {}

  /** Counts one occurrence; true when this one is to be logged. */
  take(): boolean {
    const before = this.n++;
    return before < this.first || this.n % this.every === 0;
  }

  /** Occurrences so far (for the log line: "failures: 1200"). */
  get count(): number {
    return this.n;
  }
}
