/**
 * A float8 as PostgreSQL prints it (float8out, shortest exact digits since PostgreSQL 12):
 * plain notation for decimal exponents from -4 to 14, else "1.5e+15" / "1e-05" with at least
 * two exponent digits. JavaScript's own text switches at other exponents (1e21, 1e-7).
 */
export function pgFloatText(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Object.is(n, -0)) return '-0';
  const [mantissa = '', exponent = '0'] = n.toExponential().split('e');
  const exp = Number(exponent);
  if (exp >= -4 && exp < 15) return String(n);
  const digits = String(Math.abs(exp)).padStart(2, '0');
  return `${mantissa}e${exp < 0 ? '-' : '+'}${digits}`;
}

/** Numbers in Java's Double.toString form ("1.0", "1.0E7") inside a text, in float8out's. */
export function pgFloatsIn(text: string): string {
  return text.replace(/-?\d+(?:\.\d+)?(?:E-?\d+)?/g, (m) => pgFloatText(Number(m)));
}
