import type { Period } from "./types.ts";

/**
 * Budget windows are calendar-aligned in UTC: a "day" budget resets at
 * 00:00 UTC, a "week" budget on Monday 00:00 UTC, a "month" budget on the
 * 1st. "none" is one window for ever (start 0, no end).
 */
export function windowStart(period: Period, now: number): number {
  switch (period) {
    case "none":
      return 0;
    case "minute":
      return now - (now % 60_000);
    case "hour":
      return now - (now % 3_600_000);
    case "day":
      return now - (now % 86_400_000);
    case "week": {
      const day = now - (now % 86_400_000);
      const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday = 0
      return day - weekday * 86_400_000;
    }
    case "month": {
      const d = new Date(now);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
  }
}

/** When the window that contains `now` ends (Infinity for "none"). */
export function windowEnd(period: Period, now: number): number {
  const start = windowStart(period, now);
  switch (period) {
    case "none":
      return Infinity;
    case "minute":
      return start + 60_000;
    case "hour":
      return start + 3_600_000;
    case "day":
      return start + 86_400_000;
    case "week":
      return start + 7 * 86_400_000;
    case "month": {
      const d = new Date(start);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
  }
}
