// Reads one JSON request on stdin, answers one JSON line on stdout.
// {"op":"verify","token":..,"key":..,"alg":..,"issuer":..,"audience":..}
// {"op":"sign","claims":{..},"key":..,"alg":..,"kid":..,"typ":..}
// "key" is a PEM string, or {"secret_b64": ...} for HMAC.
const jwt = require("jsonwebtoken");

function keyOf(key) {
  if (key && typeof key === "object" && key.secret_b64) return Buffer.from(key.secret_b64, "base64");
  return key;
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  try {
    if (req.op === "verify") {
      const claims = jwt.verify(req.token, keyOf(req.key), {
        algorithms: [req.alg],
        issuer: req.issuer,
        audience: req.audience,
        complete: true,
      });
      console.log(JSON.stringify({ ok: true, header: claims.header, payload: claims.payload }));
    } else {
      const token = jwt.sign(req.claims, keyOf(req.key), {
        algorithm: req.alg,
        keyid: req.kid,
        header: { typ: req.typ },
      });
      console.log(JSON.stringify({ ok: true, token }));
    }
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err && err.message) }));
  }
});
