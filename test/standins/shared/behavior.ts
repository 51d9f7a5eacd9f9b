/** Injected-failure scoping shared by the stand-ins' `setBehavior`. */

/** Fields every behaviour may carry. */
export interface BehaviorScope {
  /** Apply only to requests to this exact path (e.g. "/v1/chat/completions"); default every path. */
  path?: string;
  /** Apply to this many matching requests, then reset to normal by itself; default until `setBehavior(null)`. */
  times?: number;
}

/**
 * Holds the behaviour set with `setBehavior`. `take(path)` returns it for a
 * request whose path matches (exact by default) and counts down `times`.
 */
export class BehaviorSlot<B extends { path?: string; times?: number }> {
  readonly #matches: (scopePath: string, path: string) => boolean;
  #current: B | null = null;
  #left = Infinity;

  constructor(matches: (scopePath: string, path: string) => boolean = (scopePath, path) => scopePath === path) {
    this.#matches = matches;
  }

  /** Installs `b` (or, with null, normal answers again). */
  set(b: B | null): void {
    this.#current = b;
    this.#left = b?.times ?? Infinity;
  }

  /** The behaviour for a request to `path`, or null; uses up one of its `times`. */
  take(path: string): B | null {
    const b = this.#current;
    if (!b || (b.path !== undefined && !this.#matches(b.path, path))) return null;
    if (--this.#left <= 0) this.#current = null;
    return b;
  }
}
