import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = ["#2f6fdd", "#d6532b", "#2a9d6a", "#9b59b6", "#c99a00", "#1aa3b8", "#e0478f", "#6b7a8f"];

export interface ChartSeries {
  label: string;
  /** One value per x; null is a gap. */
  values: (number | null)[];
  dashed?: boolean;
  /** Draw each value as a dot too: for series with gaps, where a lone value has no line. */
  dots?: boolean;
}

/**
 * A time-series line chart (uPlot). `xs` are epoch ms. The chart follows its
 * container's width; `summary` is the text alternative for screen readers.
 */
export function Chart(props: { title: string; xs: number[]; series: ChartSeries[]; format: (v: number) => string; axisFormat?: (v: number) => string; summary: string; testId?: string }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join("\u0000");

  // Rebuilt when the set of series changes; data alone is swapped in place.
  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const fmt = props.format;
    const axis = props.axisFormat ?? fmt;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: 200,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "currentColor", grid: { stroke: "rgba(127,127,127,0.15)" }, ticks: { stroke: "rgba(127,127,127,0.3)" } },
        { stroke: "currentColor", size: 70, grid: { stroke: "rgba(127,127,127,0.15)" }, ticks: { stroke: "rgba(127,127,127,0.3)" }, values: (_u, vals) => vals.map((v) => axis(v)) },
      ],
      series: [
        {},
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          dash: s.dashed ? [6, 4] : undefined,
          spanGaps: false,
          points: s.dots ? { show: true, size: 4 } : {},
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : fmt(v)),
        })),
      ],
    };
    const u = new uPlot(opts, data(props), el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height: 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data(props));
  }, [props.xs, props.series]);

  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div ref={host} role="img" aria-label={`${props.title}: ${props.summary}`} />
    </figure>
  );
}

function data(p: { xs: number[]; series: ChartSeries[] }): uPlot.AlignedData {
  return [p.xs.map((x) => x / 1000), ...p.series.map((s) => s.values)];
}
