/** Line and bar charts as standalone SVG, with no dependencies. */
export interface Series {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

const COLOURS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#17becf",
];
const DASHED = ' stroke-dasharray="6 4"';

function ticks(max: number): number[] {
  const step = 10 ** Math.floor(Math.log10(max || 1));
  const unit = max / step > 5 ? step * 2 : max / step > 2 ? step : step / 2;
  const out = [];
  for (let v = 0; v <= max * 1.0001; v += unit) {
    out.push(Number(v.toPrecision(6)));
  }
  return out;
}

/** A canvas with a title, a y-axis label and a horizontal grid. */
interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  yMax: number;
}

function frame(f: Frame, title: string, yLabel: string) {
  const py = (y: number) =>
    f.top + (1 - y / f.yMax) * (f.height - f.top - f.bottom);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${
      f.width / 2
    }" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    `<text transform="translate(16 ${
      (f.top + f.height - f.bottom) / 2
    }) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
  ];
  for (const y of ticks(f.yMax)) {
    out.push(
      `<line x1="${f.left}" x2="${f.width - f.right}" y1="${py(y)}" y2="${
        py(y)
      }" stroke="#ddd"/>`,
      `<text x="${f.left - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`,
    );
  }
  return { out, py };
}

export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  { logX = false } = {},
): string {
  const fx = (x: number) => (logX ? Math.log2(x) : x);
  const xs = series.flatMap((s) => s.points.map(([x]) => fx(x)));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const f: Frame = {
    width: 720,
    height: 400,
    left: 70,
    right: 170,
    top: 40,
    bottom: 50,
    yMax: Math.max(...ys) * 1.05 || 1,
  };
  const { out, py } = frame(f, title, yLabel);
  const px = (x: number) =>
    f.left + ((fx(x) - x0) / (x1 - x0 || 1)) * (f.width - f.left - f.right);
  const baseline = f.height - f.bottom;
  out.push(
    `<text x="${(f.left + f.width - f.right) / 2}" y="${
      f.height - 10
    }" text-anchor="middle">${xLabel}</text>`,
  );
  const xTicks = logX
    ? [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))]
    : ticks(x1).filter((x) => x >= x0);
  for (const x of xTicks) {
    out.push(
      `<text x="${px(x)}" y="${
        baseline + 16
      }" text-anchor="middle">${x}</text>`,
    );
  }
  out.push(
    `<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${baseline}" stroke="black"/>`,
    `<line x1="${f.left}" x2="${
      f.width - f.right
    }" y1="${baseline}" y2="${baseline}" stroke="black"/>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const dash = s.dashed ? DASHED : "";
    const path = s.points.map(([x, y]) =>
      `${px(x).toFixed(1)},${py(y).toFixed(1)}`
    ).join(" ");
    const key = f.top + 10 + i * 20;
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${path}"/>`,
      `<line x1="${f.width - f.right + 12}" x2="${
        f.width - f.right + 36
      }" y1="${key}" y2="${key}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${f.width - f.right + 42}" y="${key + 4}">${s.name}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A bar of {@linkcode barChart}, with an optional interval around it. */
export interface Bar {
  label: string;
  value: number;
  low?: number;
  high?: number;
}

/** A bar chart of one value per label, with a reference line. */
export function barChart(
  title: string,
  yLabel: string,
  bars: Bar[],
  reference?: number,
): string {
  const f: Frame = {
    width: 720,
    height: 360,
    left: 70,
    right: 20,
    top: 40,
    bottom: 70,
    yMax: Math.max(reference ?? 0, ...bars.map((b) => b.high ?? b.value)) *
      1.1,
  };
  const { out, py } = frame(f, title, yLabel);
  const slot = (f.width - f.left - f.right) / bars.length;
  bars.forEach((b, i) => {
    const x = f.left + i * slot + slot * 0.15;
    out.push(
      `<rect x="${x}" y="${py(b.value)}" width="${slot * 0.7}" height="${
        py(0) - py(b.value)
      }" fill="${COLOURS[0]}"/>`,
      `<text x="${x + slot * 0.35}" y="${
        py(b.high ?? b.value) - 4
      }" text-anchor="middle">${b.value.toFixed(2)}</text>`,
      `<text x="${x + slot * 0.35}" y="${
        f.height - f.bottom + 16
      }" text-anchor="middle">${b.label}</text>`,
    );
    if (b.low !== undefined && b.high !== undefined) {
      const mid = x + slot * 0.35;
      out.push(
        `<path d="M${mid - 6} ${py(b.low)}H${mid + 6}M${mid} ${py(b.low)}V${
          py(b.high)
        }M${mid - 6} ${py(b.high)}H${mid + 6}" stroke="black"/>`,
      );
    }
  });
  if (reference !== undefined) {
    out.push(
      `<line x1="${f.left}" x2="${f.width - f.right}" y1="${
        py(reference)
      }" y2="${py(reference)}" stroke="#d62728"${DASHED}/>`,
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
