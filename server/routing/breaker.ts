/**
 * A circuit breaker over a sliding window of outcomes. Closed: everything
 * passes. Open (failure rate over the threshold, with enough requests in the
 * window): nothing passes until the cool-down ends. Half-open: one probe
 * passes; its success closes the breaker, its failure opens it again.
 */
export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerOptions {
  /** Fraction of failed calls in the window that opens the breaker. */
  failureRate: number;
  /** Calls the window must hold before the rate counts. */
  minRequests: number;
  windowMs: number;
  /** How long an open breaker stays open before a probe is let through. */
  cooldownMs: number;
}

const BUCKETS = 10;

export class CircuitBreaker {
  private readonly options: BreakerOptions;
  private readonly ok = new Array<number>(BUCKETS).fill(0);
  private readonly failed = new Array<number>(BUCKETS).fill(0);
  private bucketStart = 0;
  private bucket = 0;
  private state: BreakerState = "closed";
  private openedAt = 0;
  private probing = false;

  constructor(options: BreakerOptions) {
    this.options = options;
  }

  /** The state now (an open breaker whose cool-down has ended reads half-open). */
  current(now = Date.now()): BreakerState {
    if (this.state === "open" && now - this.openedAt >= this.options.cooldownMs) this.state = "half_open";
    return this.state;
  }

  /** Whether a call may go through now; in half-open, only one probe at a time. */
  allows(now = Date.now()): boolean {
    const s = this.current(now);
    if (s === "closed") return true;
    if (s === "open") return false;
    return !this.probing;
  }

  /**
   * Marks the start of a call that `allows` let through; returns whether it
   * is the half-open probe. Only the probe's outcome moves a half-open
   * breaker; results of calls let through in another state are stale there.
   */
  begin(now = Date.now()): boolean {
    if (this.current(now) !== "half_open" || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** A call's outcome. `neutral`: it said nothing about the provider (the caller left, a caller's own limit). */
  record(outcome: "success" | "failure" | "neutral", probe: boolean, now = Date.now()): void {
    const s = this.current(now);
    if (s === "half_open") {
      if (!probe) return;
      if (outcome === "success") this.reset();
      else if (outcome === "failure") this.trip(now);
      else this.probing = false;
      return;
    }
    if (s === "open" || outcome === "neutral") return;
    this.rotate(now);
    if (outcome === "success") {
      this.ok[this.bucket]! += 1;
      return;
    }
    this.failed[this.bucket]! += 1;
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < BUCKETS; i++) {
      ok += this.ok[i]!;
      failed += this.failed[i]!;
    }
    const total = ok + failed;
    if (total >= this.options.minRequests && failed / total >= this.options.failureRate) this.trip(now);
  }

  /** Closed with no failure in the window: nothing worth remembering. */
  isIdle(now = Date.now()): boolean {
    if (this.current(now) !== "closed") return false;
    this.rotate(now);
    return this.failed.every((n) => n === 0);
  }

  /** Milliseconds until an open breaker lets a probe through (0 when not open). */
  retryInMs(now = Date.now()): number {
    return this.current(now) === "open" ? Math.max(0, this.options.cooldownMs - (now - this.openedAt)) : 0;
  }

  private trip(now: number): void {
    this.state = "open";
    this.openedAt = now;
    this.probing = false;
  }

  private reset(): void {
    this.state = "closed";
    this.probing = false;
    this.ok.fill(0);
    this.failed.fill(0);
  }

  /** Advances the ring of time buckets, clearing the ones that fell out of the window. */
  private rotate(now: number): void {
    const width = this.options.windowMs / BUCKETS;
    if (this.bucketStart === 0) this.bucketStart = now;
    let steps = Math.floor((now - this.bucketStart) / width);
    if (steps <= 0) return;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.ok[this.bucket] = 0;
      this.failed[this.bucket] = 0;
    }
    this.bucketStart = now - ((now - this.bucketStart) % width);
  }
}
