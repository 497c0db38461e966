// node duckdb_query.mjs DUCKDB_MODULE_DIR SQL: prints the result rows as JSON lines.
import { createRequire } from 'node:module';
import path from 'node:path';
const [modDir, sql] = process.argv.slice(2);
const duckdb = createRequire(path.join(modDir, 'package.json'))(modDir);
const db = await duckdb.DuckDBInstance.create(':memory:');
const con = await db.connect();
for (const row of (await con.runAndReadAll(sql)).getRowObjectsJson()) console.log(JSON.stringify(row));
