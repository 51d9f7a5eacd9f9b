/** Display formats: money, counts, durations, times. */
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

const usdFmt = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const intFmt = new Intl.NumberFormat("en-US");

/** Dollars; amounts under a cent keep two significant digits, so one request's cost is not "$0.00". */
export const usd = (n: number): string => (n > 0 && n < 0.01 ? `$${n.toPrecision(2)}` : usdFmt.format(n));
export const int = (n: number | bigint): string => intFmt.format(n);
export const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(n < 10 ? 2 : 0)} ms`);

export function bytes(n: number | bigint): string {
  let v = Number(n);
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (v < 1024 || unit === "GB") return `${v.toFixed(unit === "B" ? 0 : 1)} ${unit}`;
    v /= 1024;
  }
  return `${v} B`;
}

/** A local date and time, to the second. */
export function time(msOrTs: number | bigint | Timestamp | undefined): string {
  if (msOrTs === undefined) return "";
  const d = typeof msOrTs === "object" ? timestampDate(msOrTs) : new Date(Number(msOrTs));
  if (Number(d) === 0) return "";
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A datetime-local input's value as epoch ms (0 when empty). */
export function fromLocalInput(value: string): number {
  return value === "" ? 0 : new Date(value).getTime();
}

/** "a, b ,c" → ["a", "b", "c"]. */
export function list(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}
