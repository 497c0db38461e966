// Checks streamkit's Parquet writer against an independent reader (DuckDB).
//
//   node verify.mjs PARQUET_GEN WORKDIR DUCKDB_MODULE_DIR
//
// Generates NDJSON rows (deterministic pseudo-random data plus edge cases: nulls,
// missing keys, unicode and empty strings, int64 extremes, subnormal and extreme
// doubles, -0.0, booleans, timestamps as epoch millis and as ISO-8601 strings with
// offsets and fractions), keeps the value each cell must read back as, has
// parquet_gen write the rows with every codec, in one row group and in many, and
// then reads every file with DuckDB and compares: every value, the column types,
// the Parquet schema (repetition, converted and logical types), per row group
// num_values, codec and statistics (null counts, min/max), file metadata, and
// answers to filtered queries (which DuckDB prunes using those statistics).
// Exit status: 0 all good, 1 a mismatch (printed), 77 the reader cannot be loaded.
import { execFileSync } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [gen, work, modDir] = process.argv.slice(2);
if (!gen || !work || !modDir) {
  console.error('usage: node verify.mjs PARQUET_GEN WORKDIR DUCKDB_MODULE_DIR');
  process.exit(2);
}

let duckdb;
try {
  duckdb = createRequire(path.join(modDir, 'package.json'))(modDir);
} catch (e) {
  console.error(`parquet.verify: SKIPPED: cannot load DuckDB from ${modDir}: ${e.message}`);
  process.exit(77);
}

let failures = 0;
function fail(msg) {
  failures++;
  if (failures <= 40) console.error(`MISMATCH: ${msg}`);
}

// ---------------------------------------------------------------------------
// Data

// xorshift32: deterministic data on every run.
let state = 0x2545f491;
function rnd() {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
const pick = (a) => a[rnd() % a.length];
const chance = (n) => rnd() % n === 0;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TS_MIN = -62167219200000n; // 0000-01-01T00:00:00.000Z
const TS_MAX = 253402300799999n; // 9999-12-31T23:59:59.999Z

const schema = {
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 's', type: 'string' },
    { name: 's_req', type: 'VARCHAR(64)', nullable: false },
    { name: 'n', type: 'bigint' },
    { name: 'i', type: 'int' },
    { name: 'd', type: 'double' },
    { name: 'f', type: 'float' },
    { name: 'b', type: 'boolean' },
    { name: 'b_req', type: 'boolean', nullable: false },
    { name: 't', type: 'timestamp' },
    { name: 't_req', type: 'timestamp', nullable: false },
    { name: 'z', type: 'string' }, // always null
  ],
};
const kind = {
  id: 'int', s: 'str', s_req: 'str', n: 'int', i: 'int', d: 'dbl', f: 'dbl',
  b: 'bool', b_req: 'bool', t: 'ts', t_req: 'ts', z: 'str',
};
const duckType = {
  int: 'BIGINT', str: 'VARCHAR', dbl: 'DOUBLE', bool: 'BOOLEAN', ts: 'TIMESTAMP WITH TIME ZONE',
};
const cols = schema.columns.map((c) => c.name);

// A cell is [jsonText | undefined (key left out), expected value | null].
const codepoints = [
  0x41, 0x7a, 0x20, 0x22, 0x5c, 0x0a, 0x09, 0x01, 0xe9, 0xdf, 0x3b1, 0x416, 0x5d0, 0x627, 0x4e2d, 0x65e5,
  0xac00, 0x20ac, 0xfffd, 0x1f389, 0x1f600, 0x10348, 0x1d11e,
];
function randString(maxLen, minLen = 0) {
  const n = minLen + (rnd() % (maxLen - minLen + 1));
  let s = '';
  for (let k = 0; k < n; k++) s += String.fromCodePoint(pick(codepoints));
  return s;
}
function strCell(s) {
  return [JSON.stringify(s), s];
}
function randInt64() {
  const v = BigInt.asIntN(64, (BigInt(rnd()) << 32n) | BigInt(rnd()));
  return chance(3) ? v >> BigInt(rnd() % 63) : v;
}
function intCell(v) {
  return [v.toString(), v];
}
function randDouble() {
  if (chance(3)) {
    // Any finite bit pattern: subnormals, huge and tiny exponents.
    const dv = new DataView(new ArrayBuffer(8));
    for (;;) {
      dv.setUint32(0, rnd());
      dv.setUint32(4, rnd());
      const x = dv.getFloat64(0);
      if (Number.isFinite(x)) return x;
    }
  }
  return ((rnd() / 2 ** 32) - 0.5) * 10 ** ((rnd() % 24) - 8);
}
function dblCell(x) {
  // JSON.stringify gives the shortest text that reads back as the same double.
  // simdjson rejects integer-looking numbers beyond uint64 (e.g. 630119874636703300000).
  let text = Object.is(x, -0) ? '-0.0' : JSON.stringify(x);
  if (/^-?\d{20,}$/.test(text)) text += '.0';
  return [text, x];
}
function pad(n, w) {
  return String(n).padStart(w, '0');
}
// ISO-8601 text for `ms` (a BigInt) in one of several forms; returns [text, expected ms].
function isoCell(ms) {
  const d = new Date(Number(ms));
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const form = rnd() % 8;
  switch (form) {
    case 0: return [JSON.stringify(iso), ms];
    case 1: { // no fraction: the value loses its milliseconds
      const whole = ms - BigInt(d.getUTCMilliseconds());
      return [JSON.stringify(iso.slice(0, 19) + 'Z'), whole];
    }
    case 2: // microseconds: truncated back to ms
      return [JSON.stringify(iso.slice(0, 23) + pad(rnd() % 1000, 3) + 'Z'), ms];
    case 3: // space separator, no zone: UTC
      return [JSON.stringify(iso.slice(0, 10) + ' ' + iso.slice(11, 23)), ms];
    case 4: case 5: { // a UTC offset: local wall time = UTC + offset
      const offMin = pick([60, 120, -300, -330, 345, 840, -720, 0]);
      const local = new Date(Number(ms) + offMin * 60000);
      if (local.getUTCFullYear() < 0 || local.getUTCFullYear() > 9999) return [JSON.stringify(iso), ms];
      const sign = offMin < 0 ? '-' : '+';
      const a = Math.abs(offMin);
      const sep = form === 4 ? ':' : '';
      return [JSON.stringify(local.toISOString().slice(0, 23) + sign + pad(Math.floor(a / 60), 2) + sep +
                             pad(a % 60, 2)), ms];
    }
    case 6: { // date only: midnight UTC
      const day = 86400000n;
      return [JSON.stringify(iso.slice(0, 10)), ms - (((ms % day) + day) % day)];
    }
    default: return [ms.toString(), ms]; // epoch millis as an integer
  }
}
function randTs() {
  if (chance(4)) return TS_MIN + BigInt(rnd()) * BigInt(rnd() % 70000); // anywhere in 0000-9999
  return 1700000000000n + BigInt(rnd() % 200000000) * 1000n + BigInt(rnd() % 1000) - 400000000000n;
}

const NULL = [undefined, null];
const JNULL = ['null', null];
const nullish = () => (chance(2) ? NULL : JNULL);

function randomRow(id) {
  const row = { id: intCell(BigInt(id)) };
  row.s = chance(5) ? nullish() : strCell(chance(10) ? '' : randString(12));
  row.s_req = strCell(randString(6, 1)); // never empty: its min is not simply the shortest
  row.n = chance(6) ? nullish() : intCell(randInt64());
  row.i = chance(6) ? nullish() : intCell(BigInt(rnd() % 65536) - 32768n);
  row.d = chance(6) ? nullish() : dblCell(randDouble());
  row.f = chance(2) ? nullish() : (chance(2) ? intCell(BigInt(rnd() % 100)).map((v, k) => (k ? Number(v) : v))
                                             : dblCell(randDouble()));
  row.b = chance(3) ? nullish() : (chance(2) ? ['true', true] : ['false', false]);
  row.b_req = chance(2) ? ['true', true] : ['false', false];
  row.t = chance(5) ? nullish() : isoCell(randTs());
  row.t_req = isoCell(randTs());
  row.z = nullish();
  return row;
}

// Hand-picked rows first: the edge cases, each in some column.
const rows = [];
function edge(over) {
  const r = randomRow(rows.length);
  Object.assign(r, over);
  r.id = intCell(BigInt(rows.length));
  rows.push(r);
}
edge({ n: intCell(INT64_MIN), d: dblCell(-0.0), s: strCell(''), b: ['true', true] });
edge({ n: intCell(INT64_MAX), d: dblCell(5e-324), s: strCell('héllo wörld'), b: ['false', false] });
edge({ n: intCell(0n), d: dblCell(1.7976931348623157e308), s: strCell('日本語のテキスト') });
edge({ n: intCell(-1n), d: dblCell(-1.7976931348623157e308), s: strCell('emoji 🎉😀 𝄞') });
edge({ n: intCell(2n ** 53n + 1n), d: dblCell(2.2250738585072014e-308), s: ['"\\ud83c\\udf89 escaped"', '🎉 escaped'] });
edge({ n: intCell(-(2n ** 53n) - 1n), d: ['3', 3], s: strCell('quote " backslash \\ slash / tab \t nl \n') });
edge({ n: intCell(1n), d: ['18446744073709551615', 18446744073709551615], s: strCell('\u0001 control') });
edge({ d: ['-9223372036854775808', -9223372036854775808], s: strCell('x'.repeat(100000)) });
edge({ d: ['1e-7', 1e-7], f: ['0.1', 0.1], s: strCell('NUL \u0000 inside') });
edge({ t: ['0', 0n], t_req: ['-1', -1n] });
edge({ t: [TS_MIN.toString(), TS_MIN], t_req: [TS_MAX.toString(), TS_MAX] });
edge({ t: ['"0000-01-01T00:00:00Z"', TS_MIN], t_req: ['"9999-12-31T23:59:59.999Z"', TS_MAX] });
edge({ t: ['"2024-05-01T12:00:00Z"', 1714564800000n], t_req: ['"2024-05-01T12:00:00.123+02:00"', 1714557600123n] });
edge({ t: ['"2024-05-01T12:00:00.5-05:30"', 1714584600500n], t_req: ['"1969-12-31T23:59:59.999Z"', -1n] });
edge({ t: ['"2024-02-29"', 1709164800000n], t_req: ['"2024-05-01 12:00:00"', 1714564800000n] });
edge({ s: NULL, n: NULL, i: NULL, d: NULL, f: NULL, b: NULL, t: NULL }); // every nullable key missing
edge({ s: JNULL, n: JNULL, i: JNULL, d: JNULL, f: JNULL, b: JNULL, t: JNULL }); // every one JSON null
while (rows.length < 3000) rows.push(randomRow(rows.length));
// A long all-null stretch and a long all-set stretch (RLE runs of definition levels).
for (let k = 0; k < 300; k++) {
  const r = randomRow(rows.length);
  r.s = JNULL;
  r.b = k < 150 ? NULL : ['true', true];
  rows.push(r);
}

function rowJson(r) {
  const parts = [];
  for (const c of cols) if (r[c][0] !== undefined) parts.push(`${JSON.stringify(c)}:${r[c][0]}`);
  if (chance(4)) parts.push('"not_in_schema":{"a":[1,2,3]}');
  return `{${parts.join(',')}}`;
}

const schemaFile = path.join(work, 'schema.json');
writeFileSync(schemaFile, JSON.stringify(schema));
const ndjson = rows.map(rowJson).join('\n') + '\n';
writeFileSync(path.join(work, 'rows.ndjson'), ndjson);

// ---------------------------------------------------------------------------
// Files

const codecs = { none: 'UNCOMPRESSED', snappy: 'SNAPPY', gzip: 'GZIP', zstd: 'ZSTD' };
const files = [];
for (const codec of Object.keys(codecs)) {
  files.push({ name: `one-${codec}`, codec, rgBytes: null, rows });
  files.push({ name: `multi-${codec}`, codec, rgBytes: 20000, rows });
}
files.push({ name: 'empty-zstd', codec: 'zstd', rgBytes: null, rows: [] });
files.push({ name: 'one-row-gzip', codec: 'gzip', rgBytes: null, rows: rows.slice(0, 1) });
files.push({ name: 'row-per-group-snappy', codec: 'snappy', rgBytes: 1, rows: rows.slice(0, 40) });

for (const f of files) {
  f.path = path.join(work, `${f.name}.parquet`);
  const args = ['--schema', schemaFile, '--codec', f.codec, f.path];
  if (f.rgBytes) args.splice(0, 0, '--row-group-bytes', String(f.rgBytes));
  const input = f.rows === rows ? ndjson : f.rows.map(rowJson).join('\n') + (f.rows.length ? '\n' : '');
  const out = execFileSync(gen, args, { input, encoding: 'utf8', maxBuffer: 1 << 26 });
  f.genOut = out.trim();
  if (!existsSync(f.path)) throw new Error(`${gen} wrote no ${f.path}`);
}

// ---------------------------------------------------------------------------
// Reading back

const db = await duckdb.DuckDBInstance.create(':memory:');
const con = await db.connect();
const query = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson();
const version = (await query('SELECT version() AS v'))[0].v;
const sqlStr = (s) => `'${s.replaceAll("'", "''")}'`;
const quoteIdent = (s) => `"${s.replaceAll('"', '""')}"`;

// What DuckDB's JSON conversion returns for an expected value.
function same(k, got, want) {
  if (want === null) return got === null;
  if (got === null) return false;
  switch (k) {
    case 'int': case 'ts': return BigInt(got) === want;
    case 'dbl': return Object.is(Number(got), want);
    default: return got === want;
  }
}
const show = (v) => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)?.slice(0, 80));

// Min / max / null count of expected values, in Parquet's orders.
function cmp(k, a, b) {
  if (k === 'str') {
    const x = Buffer.from(a, 'utf8');
    const y = Buffer.from(b, 'utf8');
    return Buffer.compare(x, y);
  }
  if (k === 'bool') return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : Object.is(a, -0) && Object.is(b, 0) ? -1 : Object.is(a, 0) && Object.is(b, -0) ? 1 : 0;
}
function stats(k, values) {
  let min = null;
  let max = null;
  let nulls = 0;
  for (const v of values) {
    if (v === null) { nulls++; continue; }
    if (min === null || cmp(k, v, min) < 0) min = v;
    if (max === null || cmp(k, v, max) > 0) max = v;
  }
  return { min, max, nulls };
}
// Parses DuckDB's rendering of a statistics value back to the expected domain.
function parseStat(k, s) {
  if (s === null) return null;
  switch (k) {
    case 'int': return BigInt(s);
    case 'dbl': return Number(s);
    case 'bool': return s === 'true';
    case 'ts': { // "2024-05-01 12:00:00.123+00", "0001-01-01 (BC) 00:00:00+00" (= year 0)
      const m = /^(\d{4,})-(\d\d)-(\d\d)( \(BC\))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?\+00$/.exec(s);
      if (!m) throw new Error(`cannot parse timestamp statistic ${s}`);
      const year = m[4] ? 1 - Number(m[1]) : Number(m[1]);
      const d = new Date(0);
      d.setUTCFullYear(year, Number(m[2]) - 1, Number(m[3]));
      d.setUTCHours(Number(m[5]), Number(m[6]), Number(m[7]), Number((m[8] ?? '0').padEnd(3, '0')));
      return BigInt(d.getTime());
    }
    default: return s;
  }
}

for (const f of files) {
  const before = failures;
  try {
    await checkFile(f);
  } catch (e) {
    fail(`${f.name}: the reader failed: ${e.message}`);
  }}

async function checkFile(f) {
  const F = sqlStr(f.path);
  const exp = f.rows;

  // Values, in file order.
  const select = cols.map((c) => (kind[c] === 'ts' ? `epoch_ms(${quoteIdent(c)}) AS ${quoteIdent(c)}`
                                                  : quoteIdent(c))).join(', ');
  const got = await query(`SELECT ${select} FROM read_parquet(${F}, file_row_number=true) ORDER BY file_row_number`);
  if (got.length !== exp.length) fail(`${f.name}: ${got.length} rows read, ${exp.length} written`);
  for (let r = 0; r < Math.min(got.length, exp.length); r++) {
    for (const c of cols) {
      if (!same(kind[c], got[r][c], exp[r][c][1]))
        fail(`${f.name}: row ${r} column ${c}: read ${show(got[r][c])}, wrote ${show(exp[r][c][1])} (json ${exp[r][c][0]})`);
    }
  }

  // Column types as DuckDB maps them, and the Parquet schema.
  const desc = await query(`DESCRIBE SELECT * FROM read_parquet(${F})`);
  if (desc.map((d) => d.column_name).join() !== cols.join()) fail(`${f.name}: columns ${desc.map((d) => d.column_name)}`);
  for (const d of desc)
    if (d.column_type !== duckType[kind[d.column_name]]) fail(`${f.name}: ${d.column_name} has type ${d.column_type}`);
  const ps = await query(`SELECT * FROM parquet_schema(${F})`);
  if (ps[0].num_children !== String(cols.length)) fail(`${f.name}: root num_children ${ps[0].num_children}`);
  for (const e of ps.slice(1)) {
    const col = schema.columns.find((c) => c.name === e.name);
    const k = kind[e.name];
    const want = {
      type: { int: 'INT64', ts: 'INT64', str: 'BYTE_ARRAY', dbl: 'DOUBLE', bool: 'BOOLEAN' }[k],
      repetition_type: col.nullable === false ? 'REQUIRED' : 'OPTIONAL',
      converted_type: { str: 'UTF8', ts: 'TIMESTAMP_MILLIS' }[k] ?? null,
    };
    for (const [key, v] of Object.entries(want))
      if (e[key] !== v) fail(`${f.name}: schema ${e.name}.${key} = ${e[key]}, want ${v}`);
    if (k === 'str' && e.logical_type !== 'StringType()') fail(`${f.name}: ${e.name} logical type ${e.logical_type}`);
    if (k === 'ts' && !/^TimestampType\(isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=MilliSeconds\(\)/.test(e.logical_type))
      fail(`${f.name}: ${e.name} logical type ${e.logical_type}`);
  }

  // File metadata.
  const fm = (await query(`SELECT * FROM parquet_file_metadata(${F})`))[0];
  if (!/^streamkit version \d+\.\d+\.\d+/.test(fm.created_by)) fail(`${f.name}: created_by ${fm.created_by}`);
  if (fm.num_rows !== String(exp.length)) fail(`${f.name}: num_rows ${fm.num_rows}`);
  if (fm.format_version !== '1') fail(`${f.name}: format_version ${fm.format_version}`);

  // Row groups: codec, counts and statistics of each column chunk.
  const md = await query(`SELECT * FROM parquet_metadata(${F}) ORDER BY row_group_id, column_id`);
  const groups = [...new Set(md.map((m) => m.row_group_id))];
  if (groups.length !== Number(fm.num_row_groups)) fail(`${f.name}: ${groups.length} row groups listed`);
  if (f.rgBytes && exp.length > 1 && groups.length < 2) fail(`${f.name}: expected several row groups, got ${groups.length}`);
  if (!f.rgBytes && exp.length > 0 && groups.length !== 1) fail(`${f.name}: expected one row group, got ${groups.length}`);
  if (f.rgBytes === 1 && groups.length !== exp.length) fail(`${f.name}: ${groups.length} row groups for ${exp.length} rows`);
  let first = 0;
  for (const g of groups) {
    const chunks = md.filter((m) => m.row_group_id === g);
    const n = Number(chunks[0].row_group_num_rows);
    const slice = exp.slice(first, first + n);
    for (const m of chunks) {
      const c = m.path_in_schema;
      const k = kind[c];
      const where = `${f.name}: row group ${g} column ${c}`;
      if (m.compression !== codecs[f.codec]) fail(`${where}: compression ${m.compression}`);
      if (m.num_values !== String(n)) fail(`${where}: num_values ${m.num_values}, rows ${n}`);
      const st = stats(k, slice.map((r) => r[c][1]));
      if (m.stats_null_count !== String(st.nulls)) fail(`${where}: null_count ${m.stats_null_count}, want ${st.nulls}`);
      const gmin = parseStat(k, m.stats_min_value);
      const gmax = parseStat(k, m.stats_max_value);
      // Strings over 64 bytes leave min/max out; when present they must be exact.
      const longStr = k === 'str' && st.min !== null &&
        (Buffer.byteLength(st.min) > 64 || Buffer.byteLength(st.max) > 64);
      if (st.min === null || longStr) {
        if (gmin !== null || gmax !== null) fail(`${where}: min/max ${show(gmin)}/${show(gmax)}, want none`);
      } else {
        // Zeros: -0.0 is written as the min and +0.0 as the max (either zero may be the true one).
        const wmin = k === 'dbl' && st.min === 0 ? -0 : st.min;
        const wmax = k === 'dbl' && st.max === 0 ? 0 : st.max;
        if (!same(k, gmin, wmin)) fail(`${where}: min ${show(gmin)}, want ${show(wmin)}`);
        if (!same(k, gmax, wmax)) fail(`${where}: max ${show(gmax)}, want ${show(wmax)}`);
      }
    }
    first += n;
  }
  if (first !== exp.length) fail(`${f.name}: row groups hold ${first} rows`);

  // Filtered counts: DuckDB skips row groups by min/max, so wrong statistics show here.
  if (exp.length > 0) {
    const probes = [];
    for (let q = 0; q < 6; q++) {
      const r = exp[rnd() % exp.length];
      for (const c of ['id', 'n', 'd', 's_req', 't', 'b']) {
        const v = r[c][1];
        if (v === null) continue;
        let lit;
        switch (kind[c]) {
          case 'int': lit = `CAST('${v}' AS BIGINT)`; break;
          case 'dbl': lit = `CAST('${Object.is(v, -0) ? '-0.0' : v.toString()}' AS DOUBLE)`; break;
          case 'str': lit = sqlStr(v); break;
          case 'ts': lit = `${sqlStr(new Date(Number(v)).toISOString())}::TIMESTAMPTZ`; break;
          default: lit = String(v);
        }
        // SQL semantics: IEEE comparison for doubles (-0.0 = 0.0), bytes for strings.
        const eq = (x) => (kind[c] === 'dbl' ? x === v : cmp(kind[c], x, v) === 0);
        const ge = (x) => (kind[c] === 'dbl' ? x >= v : cmp(kind[c], x, v) >= 0);
        const present = exp.map((x) => x[c][1]).filter((x) => x !== null);
        probes.push({ sql: `${quoteIdent(c)} = ${lit}`, count: present.filter(eq).length });
        probes.push({ sql: `${quoteIdent(c)} >= ${lit}`, count: present.filter(ge).length });
      }
    }
    for (const p of probes) {
      const n = (await query(`SELECT count(*) AS n FROM read_parquet(${F}) WHERE ${p.sql}`))[0].n;
      if (n !== String(p.count)) fail(`${f.name}: WHERE ${p.sql.slice(0, 100)}: ${n} rows, want ${p.count}`);
    }
  }
}

console.log(`reader: DuckDB ${version} (@duckdb/node-api ${createRequire(path.join(modDir, 'package.json'))('./package.json').version})`);
if (failures > 0) {
  console.error(`parquet.verify: ${failures} mismatches`);
  process.exit(1);
}
console.log('parquet.verify: ok');
