// Small hand-written SVG charts: horizontal bars, plain or stacked.

import "./supervisor.css";

/** One bar: a label and its value. */
export interface Bar {
  label: string;
  value: number;
  /** Colour of the bar (a CSS colour); the accent when unset. */
  color?: string;
}

/** A part of a stacked bar. */
export interface Segment {
  name: string;
  color: string;
}

const WIDTH = 520;
const VALUE_W = 56;
const ROW_H = 26;
const BAR_H = 14;
const LEGEND_H = 22;

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Where the rows of a chart `width` wide put their labels and bars. */
function columns(width: number): { labelW: number; span: number } {
  const labelW = Math.round(width * 0.29);
  return { labelW, span: width - labelW - VALUE_W };
}

/** The chart's SVG, `width` by `height`, shrinking with its container. */
function ChartSvg(props: { width: number; height: number; label: string; children: React.ReactNode }) {
  return (
    <svg
      className="sup-chart"
      data-testid="sup-chart"
      viewBox={`0 0 ${props.width} ${props.height}`}
      width="100%"
      style={{ maxWidth: props.width }}
      role="img"
      aria-label={props.label}
      preserveAspectRatio="xMinYMin meet"
    >
      {props.children}
    </svg>
  );
}

/** "No data", centred on `x` with its baseline at `y`. */
function NoData({ x, y }: { x: number; y: number }) {
  return (
    <text x={x} y={y} textAnchor="middle" className="sup-chart-empty">
      No data
    </text>
  );
}

/** One row at `y`: its label, the empty track with the bars drawn on it, and its value on the right. */
function Row(props: { y: number; width: number; label: string; value: string; children: React.ReactNode }) {
  const { labelW, span } = columns(props.width);
  const baseline = props.y + BAR_H - 2;
  return (
    <>
      <text x={labelW - 10} y={baseline} textAnchor="end" className="sup-chart-label">
        {clip(props.label, Math.floor(labelW / 7))}
      </text>
      <rect x={labelW} y={props.y} width={span} height={BAR_H} rx={3} className="sup-chart-track" />
      {props.children}
      <text x={labelW + span + 8} y={baseline} className="sup-chart-value">
        {props.value}
      </text>
    </>
  );
}

/** Horizontal bars, one per row, scaled to the largest value (or `max`); `width` in px. */
export function BarChart(props: { bars: Bar[]; format?: (v: number) => string; max?: number; label: string; width?: number }) {
  const { bars } = props;
  const W = props.width ?? WIDTH;
  const { labelW, span } = columns(W);
  const fmt = props.format ?? ((v: number) => String(v));
  const max = Math.max(props.max ?? 0, ...bars.map((b) => b.value), 1e-9);
  const h = Math.max(bars.length, 1) * ROW_H + 6;
  return (
    <ChartSvg width={W} height={h} label={props.label}>
      {bars.length === 0 && <NoData x={W / 2} y={h / 2 + 4} />}
      {bars.map((b, i) => {
        const y = i * ROW_H + 6;
        const w = b.value > 0 ? Math.max(2, (b.value / max) * span) : 0;
        return (
          <g key={`${b.label}-${i}`}>
            <title>{`${b.label}: ${fmt(b.value)}`}</title>
            <Row y={y} width={W} label={b.label} value={fmt(b.value)}>
              <rect x={labelW} y={y} width={w} height={BAR_H} rx={3} fill={b.color ?? "var(--accent)"} />
            </Row>
          </g>
        );
      })}
    </ChartSvg>
  );
}

/** Stacked horizontal bars: each row's values in the order of `segments`, with a legend. */
export function StackedBarChart(props: { rows: { label: string; values: number[] }[]; segments: Segment[]; label: string }) {
  const { rows, segments } = props;
  const W = WIDTH;
  const { labelW, span } = columns(W);
  const max = Math.max(1, ...rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const h = Math.max(rows.length, 1) * ROW_H + 6 + LEGEND_H;
  let lx = 0;
  return (
    <ChartSvg width={W} height={h} label={props.label}>
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
      {rows.length === 0 && <NoData x={W / 2} y={LEGEND_H + 20} />}
      {rows.map((r, i) => {
        const y = LEGEND_H + i * ROW_H + 6;
        const total = r.values.reduce((a, b) => a + b, 0);
        let x = labelW;
        return (
          <g key={`${r.label}-${i}`}>
            <Row y={y} width={W} label={r.label} value={String(total)}>
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
            </Row>
          </g>
        );
      })}
    </ChartSvg>
  );
}
