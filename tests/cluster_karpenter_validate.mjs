// Validate Karpenter v1 objects against the schemas compiled into the npm package
// @kubernetes-models/karpenter (2.0.0), strictly.
//
//   node tests/cluster_karpenter_validate.mjs PACKAGE_DIR < objects.json > report.json
//
// stdin: a JSON list of objects; stdout: a JSON list, one entry per object:
//   {"kind", "name", "errors": ["<path> <message>", ...]}
// The package's validators (ajv, compiled) check types, enums, patterns, formats and required
// fields but ignore unknown fields. To be strict like the API server's field validation, every
// object is wrapped in a Proxy that records which properties the validator looked up: a key of
// an object whose properties the validator inspected one by one, but never looked up and never
// enumerated (as it does for maps), is an unknown field and is reported.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const SCHEMAS = {
  "karpenter.sh/v1 NodePool": "IoK8sSigsKarpenterPkgApisV1NodePool.js",
  "karpenter.sh/v1 NodeClaim": "IoK8sSigsKarpenterPkgApisV1NodeClaim.js",
  "karpenter.k8s.aws/v1 EC2NodeClass": "ComGithubAwsKarpenterProviderAwsPkgApisV1EC2NodeClass.js",
};

function wrap(value, where, records) {
  if (value === null || typeof value !== "object") return value;
  const isArray = Array.isArray(value);
  const rec = { where, keys: isArray ? [] : Object.keys(value), read: new Set(), touched: false, enumerated: false };
  if (!isArray) records.push(rec);
  const inner = isArray
    ? value.map((v, i) => wrap(v, `${where}/${i}`, records))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wrap(v, `${where}/${k}`, records)]));
  const note = (k) => { if (typeof k === "string") { rec.read.add(k); rec.touched = true; } };
  return new Proxy(inner, {
    get(t, k, r) { note(k); return Reflect.get(t, k, r); },
    has(t, k) { note(k); return Reflect.has(t, k); },
    ownKeys(t) { rec.enumerated = true; return Reflect.ownKeys(t); },
  });
}

const pkg = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));
const report = [];
for (const obj of objects) {
  const kind = `${obj.apiVersion} ${obj.kind}`;
  const entry = { kind: obj.kind, name: obj.metadata?.name ?? null, errors: [] };
  report.push(entry);
  const file = SCHEMAS[kind];
  if (!file) { entry.errors.push(`no Karpenter schema for ${kind}`); continue; }
  const { validate } = await import(pathToFileURL(path.join(pkg, "_schemas", file)).href);
  const records = [];
  const ok = validate(wrap(obj, "", records));
  if (!ok) for (const e of validate.errors) entry.errors.push(`${e.instancePath || "/"} ${e.keyword} ${JSON.stringify(e.params)}`);
  for (const rec of records) {
    if (!rec.touched || rec.enumerated) continue;
    for (const k of rec.keys) if (!rec.read.has(k)) entry.errors.push(`${rec.where || "/"} unknown field "${k}"`);
  }
}
process.stdout.write(JSON.stringify(report, null, 1));
