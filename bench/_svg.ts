/** A line chart as a standalone SVG, with no dependencies. */
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

function ticks(max: number): number[] {
  const step = 10 ** Math.floor(Math.log10(max || 1));
  const unit = max / step > 5 ? step * 2 : max / step > 2 ? step : step / 2;
  const out = [];
  for (let v = 0; v <= max * 1.0001; v += unit) {
    out.push(Number(v.toPrecision(6)));
  }
  return out;
}

export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  { logX = false } = {},
): string {
  const width = 720,
    height = 400,
    left = 70,
    right = 170,
    top = 40,
    bottom = 50;
  const fx = (x: number) => (logX ? Math.log2(x) : x);
  const xs = series.flatMap((s) => s.points.map(([x]) => fx(x)));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const yMax = Math.max(...ys) * 1.05 || 1;
  const px = (x: number) =>
    left + ((fx(x) - x0) / (x1 - x0 || 1)) * (width - left - right);
  const py = (y: number) => top + (1 - y / yMax) * (height - top - bottom);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${
      width / 2
    }" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    `<text x="${(left + width - right) / 2}" y="${
      height - 10
    }" text-anchor="middle">${xLabel}</text>`,
    `<text transform="translate(16 ${
      (top + height - bottom) / 2
    }) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
  ];
  for (const y of ticks(yMax)) {
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${py(y)}" y2="${
        py(y)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`,
    );
  }
  const xTicks = logX
    ? [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))]
    : ticks(x1).filter((x) => x >= x0);
  for (const x of xTicks) {
    out.push(
      `<text x="${px(x)}" y="${
        height - bottom + 16
      }" text-anchor="middle">${x}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${
      height - bottom
    }" stroke="black"/>`,
    `<line x1="${left}" x2="${width - right}" y1="${height - bottom}" y2="${
      height - bottom
    }" stroke="black"/>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const path = s.points.map(([x, y]) =>
      `${px(x).toFixed(1)},${py(y).toFixed(1)}`
    ).join(" ");
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      } points="${path}"/>`,
      `<line x1="${width - right + 12}" x2="${width - right + 36}" y1="${
        top + 10 + i * 20
      }" y2="${top + 10 + i * 20}" stroke="${colour}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      }/>`,
      `<text x="${width - right + 42}" y="${
        top + 14 + i * 20
      }">${s.name}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A bar chart of one value per label, with a reference line. */
export function barChart(
  title: string,
  yLabel: string,
  bars: Array<{ label: string; value: number }>,
  reference?: number,
): string {
  const width = 720, height = 360, left = 70, top = 40, bottom = 70;
  const yMax = Math.max(reference ?? 0, ...bars.map((b) => b.value)) * 1.1;
  const slot = (width - left - 20) / bars.length;
  const py = (y: number) => top + (1 - y / yMax) * (height - top - bottom);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${
      width / 2
    }" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    `<text transform="translate(16 ${
      (top + height - bottom) / 2
    }) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
  ];
  for (const y of ticks(yMax)) {
    out.push(
      `<line x1="${left}" x2="${width - 20}" y1="${py(y)}" y2="${
        py(y)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`,
    );
  }
  bars.forEach((b, i) => {
    const x = left + i * slot + slot * 0.15;
    out.push(
      `<rect x="${x}" y="${py(b.value)}" width="${slot * 0.7}" height="${
        py(0) - py(b.value)
      }" fill="${COLOURS[0]}"/>`,
      `<text x="${x + slot * 0.35}" y="${
        py(b.value) - 4
      }" text-anchor="middle">${b.value.toFixed(2)}</text>`,
      `<text x="${x + slot * 0.35}" y="${
        height - bottom + 16
      }" text-anchor="middle">${b.label}</text>`,
    );
  });
  if (reference !== undefined) {
    out.push(
      `<line x1="${left}" x2="${width - 20}" y1="${py(reference)}" y2="${
        py(reference)
      }" stroke="#d62728" stroke-dasharray="6 4"/>`,
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
