// A small line chart drawn as SVG: no library, nothing fetched. Colours come
// from style.css (classes), never from style attributes, which the page's
// Content-Security-Policy refuses.

const SVG = 'http://www.w3.org/2000/svg';
const W = 320; // the drawing's own units; CSS scales it to its box
const H = 90;

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten of
// unit (a percent, a MiB), and to one unit at least.
function niceMax(v, unit) {
  const m = Math.max(v / unit, 1);
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  for (const f of [1, 2, 5]) if (m <= f * p) return f * p * unit;
  return 10 * p * unit;
}

// drawChart draws into box the values of samples ({t: ms, v: number|null})
// over the span (ms) ending now: one line per stretch of readings, broken
// where the job did not run (v null). fmt labels the top of the scale.
export function drawChart(box, samples, { span, unit, fmt, label, cls }) {
  const now = Date.now();
  const top = niceMax(Math.max(0, ...samples.filter((s) => s.v !== null).map((s) => s.v)), unit);
  const x = (t) => (W * (t - (now - span)) / span).toFixed(1);
  const y = (v) => (H - 2 - (H - 4) * Math.min(v, top) / top).toFixed(1);
  const lines = [];
  let pts = [];
  for (const s of samples) {
    if (s.v === null) {
      if (pts.length) lines.push(pts);
      pts = [];
    } else {
      pts.push(x(s.t) + ',' + y(s.v));
    }
  }
  if (pts.length) lines.push(pts);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart ' + cls, role: 'img', 'aria-label': label },
    svg('line', { x1: 0, y1: 2, x2: W, y2: 2, class: 'chart-grid' }),
    svg('line', { x1: 0, y1: H / 2, x2: W, y2: H / 2, class: 'chart-grid' }),
    svg('line', { x1: 0, y1: H - 1, x2: W, y2: H - 1, class: 'chart-axis' }),
    ...lines.map((p) => svg('polyline', { points: (p.length === 1 ? [p[0], p[0]] : p).join(' '), class: 'chart-line' })));
  chart.dataset.top = fmt(top);
  box.replaceChildren(chart);
}
