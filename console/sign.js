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
  async function sha256Hex(bytes) {
    return hex(await crypto.subtle.digest("SHA-256", bytes));
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
    const key = await crypto.subtle.importKey("raw", te.encode(sk), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const sig = hex(await crypto.subtle.sign("HMAC", key, te.encode(toSign)));
    return {
      "X-Sdk-Date": xDate,
      Authorization: `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=host;x-sdk-date, Signature=${sig}`,
    };
  }
  return { sign, canonicalUri, canonicalQuery };
})();
