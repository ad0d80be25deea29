// Small hand-written SVG charts: horizontal bars, plain or stacked.

import "./supervisor.css";

/** One bar: a label and its value. */
export interface Bar {
  label: string;
  value: number;
  /** Colour of the bar (a CSS colour); the accent when unset. */
  color?: string;
}

const WIDTH = 520;
const VALUE_W = 56;
const ROW_H = 26;
const BAR_H = 14;

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Horizontal bars, one per row, scaled to the largest value (or `max`); `width` in px. */
export function BarChart(props: { bars: Bar[]; format?: (v: number) => string; max?: number; label: string; width?: number }) {
  const { bars } = props;
  const W = props.width ?? WIDTH;
  const LABEL_W = Math.round(W * 0.29);
  const fmt = props.format ?? ((v: number) => String(v));
  const max = Math.max(props.max ?? 0, ...bars.map((b) => b.value), 1e-9);
  const h = Math.max(bars.length, 1) * ROW_H + 6;
  const span = W - LABEL_W - VALUE_W;
  return (
    <svg
      className="sup-chart"
      data-testid="sup-chart"
      viewBox={`0 0 ${W} ${h}`}
      width="100%"
      style={{ maxWidth: W }}
      role="img"
      aria-label={props.label}
      preserveAspectRatio="xMinYMin meet"
    >
      {bars.length === 0 && (
        <text x={W / 2} y={h / 2 + 4} textAnchor="middle" className="sup-chart-empty">
          No data
        </text>
      )}
      {bars.map((b, i) => {
        const y = i * ROW_H + 6;
        const w = b.value > 0 ? Math.max(2, (b.value / max) * span) : 0;
        return (
          <g key={`${b.label}-${i}`}>
            <title>{`${b.label}: ${fmt(b.value)}`}</title>
            <text x={LABEL_W - 10} y={y + BAR_H - 2} textAnchor="end" className="sup-chart-label">
              {clip(b.label, Math.floor(LABEL_W / 7))}
            </text>
            <rect x={LABEL_W} y={y} width={span} height={BAR_H} rx={3} className="sup-chart-track" />
            <rect x={LABEL_W} y={y} width={w} height={BAR_H} rx={3} fill={b.color ?? "var(--accent)"} />
            <text x={LABEL_W + span + 8} y={y + BAR_H - 2} className="sup-chart-value">
              {fmt(b.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** A part of a stacked bar. */
export interface Segment {
  name: string;
  color: string;
}

/** Stacked horizontal bars: each row's values in the order of `segments`, with a legend. */
export function StackedBarChart(props: { rows: { label: string; values: number[] }[]; segments: Segment[]; label: string }) {
  const { rows, segments } = props;
  const W = WIDTH;
  const LABEL_W = Math.round(W * 0.29);
  const max = Math.max(1, ...rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const legendH = 22;
  const h = Math.max(rows.length, 1) * ROW_H + 6 + legendH;
  const span = W - LABEL_W - VALUE_W;
  let lx = 0;
  return (
    <svg
      className="sup-chart"
      data-testid="sup-chart"
      viewBox={`0 0 ${W} ${h}`}
      width="100%"
      style={{ maxWidth: W }}
      role="img"
      aria-label={props.label}
      preserveAspectRatio="xMinYMin meet"
    >
      {segments.map((s) => {
        const x = lx;
        lx += s.name.length * 6.4 + 26;
        return (
          <g key={s.name}>
            <rect x={x} y={4} width={10} height={10} rx={2} fill={s.color} />
            <text x={x + 14} y={13} className="sup-chart-legend">
              {s.name}
            </text>
          </g>
        );
      })}
      {rows.length === 0 && (
        <text x={W / 2} y={legendH + 20} textAnchor="middle" className="sup-chart-empty">
          No data
        </text>
      )}
      {rows.map((r, i) => {
        const y = legendH + i * ROW_H + 6;
        const total = r.values.reduce((a, b) => a + b, 0);
        let x = LABEL_W;
        return (
          <g key={`${r.label}-${i}`}>
            <text x={LABEL_W - 10} y={y + BAR_H - 2} textAnchor="end" className="sup-chart-label">
              {clip(r.label, Math.floor(LABEL_W / 7))}
            </text>
            <rect x={LABEL_W} y={y} width={span} height={BAR_H} rx={3} className="sup-chart-track" />
            {r.values.map((v, j) => {
              const w = (v / max) * span;
              const seg = (
                <rect key={j} x={x} y={y} width={w} height={BAR_H} fill={segments[j].color}>
                  <title>{`${r.label}: ${v} ${segments[j].name.toLowerCase()}`}</title>
                </rect>
              );
              x += w;
              return seg;
            })}
            <text x={LABEL_W + span + 8} y={y + BAR_H - 2} className="sup-chart-value">
              {total}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
