// SDK-HMAC-SHA256 request signing in the browser (SPEC.md 2), the same canonical request as
// crates/api/src/auth/canonical.rs: method, canonical URI (each segment decoded then encoded
// keeping only unreserved characters, a trailing "/"), sorted canonical query, the signed
// headers (host;x-sdk-date), their names, and the hex SHA-256 of the body.
"use strict";
const fgsSign = (() => {
  const te = new TextEncoder();
  const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
  // encodeURIComponent keeps !'()* as well; the server keeps only A-Z a-z 0-9 - _ . ~
  const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const dec = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  function canonicalUri(path) {
    let out = dec(path).split("/").map(enc).join("/");
    return out.endsWith("/") ? out : out + "/";
  }
  function canonicalQuery(q) {
    if (!q) return "";
    const pairs = q.split("&").filter(Boolean).map((p) => {
      const i = p.indexOf("=");
      return i < 0 ? [dec(p), ""] : [dec(p.slice(0, i)), dec(p.slice(i + 1))];
    });
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return pairs.map(([k, v]) => enc(k) + "=" + enc(v)).join("&");
  }
  function sdkDate(d) {
    return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  }
  // Web Crypto exists only in secure contexts (https, localhost). Over plain HTTP on another
  // address the console falls back to this small SHA-256 (FIPS 180-4) so that signing works.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  function sha256js(msg) {
    const l = msg.length, n = ((l + 9 + 63) >> 6) << 6, m = new Uint8Array(n);
    m.set(msg); m[l] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(n - 8, Math.floor(l / 0x20000000)); dv.setUint32(n - 4, l << 3);
    const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const W = new Uint32Array(64), r = (x, k) => (x >>> k) | (x << (32 - k));
    for (let o = 0; o < n; o += 64) {
      for (let i = 0; i < 16; i++) W[i] = dv.getUint32(o + i * 4);
      for (let i = 16; i < 64; i++) {
        const a = W[i - 15], b = W[i - 2];
        W[i] = W[i - 16] + (r(a, 7) ^ r(a, 18) ^ (a >>> 3)) + W[i - 7] + (r(b, 17) ^ r(b, 19) ^ (b >>> 10));
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const t1 = (h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) >>> 0;
        const t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    const out = new Uint8Array(32), ov = new DataView(out.buffer);
    H.forEach((v, i) => ov.setUint32(i * 4, v));
    return out;
  }
  function hmacjs(key, msg) {
    if (key.length > 64) key = sha256js(key);
    const k = new Uint8Array(64); k.set(key);
    const pad = (x) => k.map((b) => b ^ x);
    const cat = (a, b) => { const c = new Uint8Array(a.length + b.length); c.set(a); c.set(b, a.length); return c; };
    return sha256js(cat(pad(0x5c), sha256js(cat(pad(0x36), msg))));
  }
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  async function sha256Hex(bytes) {
    return hex(subtle ? await subtle.digest("SHA-256", bytes) : sha256js(bytes));
  }
  async function hmacHex(sk, msg) {
    if (!subtle) return hex(hmacjs(te.encode(sk), te.encode(msg)));
    const key = await subtle.importKey("raw", te.encode(sk), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return hex(await subtle.sign("HMAC", key, te.encode(msg)));
  }
  // Returns the headers to add: X-Sdk-Date and Authorization.
  async function sign({ method, path, query, host, body, ak, sk, date }) {
    const xDate = sdkDate(date || new Date());
    const bodyBytes = typeof body === "string" ? te.encode(body) : body || new Uint8Array();
    const canonical = [
      method.toUpperCase(),
      canonicalUri(path),
      canonicalQuery(query),
      "host:" + host + "\nx-sdk-date:" + xDate + "\n",
      "host;x-sdk-date",
      await sha256Hex(bodyBytes),
    ].join("\n");
    const toSign = "SDK-HMAC-SHA256\n" + xDate + "\n" + (await sha256Hex(te.encode(canonical)));
    const sig = await hmacHex(sk, toSign);
    return {
      "X-Sdk-Date": xDate,
      Authorization: `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=host;x-sdk-date, Signature=${sig}`,
    };
  }
  return { sign, canonicalUri, canonicalQuery, sha256js, hmacjs };
})();
