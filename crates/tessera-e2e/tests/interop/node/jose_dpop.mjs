// DPoP and ES256 interop with the Node `jose` library, against a running
// Tessera over HTTP only:
//
//   node jose_dpop.mjs --issuer URL --backend-id ID --backend-secret SECRET \
//       --client-id PUBLIC_ID --audience AUD
//
// jose makes an ES256 key pair and its RFC 7638 thumbprint; the backend
// opens a session bound to it; every access token must verify with jose
// from the JWKS alone (createRemoteJWKSet: the algorithm comes from the
// published key) and carry cnf.jkt equal to jose's thumbprint; proofs that
// jose signs must be accepted at the token endpoint, and a replayed one
// refused with invalid_dpop_proof. Prints {"ok": bool, "steps": [...]};
// exit 0 on success, 1 on a failed check, 2 on usage. Never prints a
// token or a key.

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import {
  SignJWT,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
} from "jose";

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      issuer: { type: "string" },
      "backend-id": { type: "string" },
      "backend-secret": { type: "string" },
      "client-id": { type: "string" },
      audience: { type: "string" },
    },
    strict: true,
  }));
  for (const name of ["issuer", "backend-id", "backend-secret", "client-id", "audience"]) {
    if (!args[name]) throw new Error(`--${name} is required`);
  }
} catch (error) {
  console.error(String(error));
  process.exit(2);
}

const steps = [];
const fail = (message) => {
  throw new Error(message);
};

async function call(url, init) {
  const response = await fetch(url, { redirect: "manual", ...init });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

async function main() {
  const meta = (await call(`${args.issuer}/.well-known/oauth-authorization-server`)).body;
  if (!meta?.dpop_signing_alg_values_supported?.includes("ES256")) fail("discovery does not offer ES256 DPoP");
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  steps.push({ step: "discovery" });

  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, "sha256");

  const checkBound = async (name, answer) => {
    if (answer?.token_type !== "DPoP") fail(`${name}: token_type ${answer?.token_type}`);
    const { payload, protectedHeader } = await jwtVerify(answer.access_token, jwks, {
      issuer: args.issuer,
      audience: args.audience,
      typ: "at+jwt",
    });
    if (payload.cnf?.jkt !== jkt) fail(`${name}: cnf.jkt is not jose's thumbprint`);
    steps.push({ step: name, alg: protectedHeader.alg, cnf_jkt_matches_jose: true });
  };

  const basic = Buffer.from(`${encodeURIComponent(args["backend-id"])}:${encodeURIComponent(args["backend-secret"])}`).toString("base64");
  const opened = await call(meta.sessions_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${basic}` },
    body: JSON.stringify({ subject: "node-dpop", client_id: args["client-id"], audience: [args.audience], dpop_jkt: jkt }),
  });
  if (opened.status !== 201) fail(`open: ${opened.status} ${JSON.stringify(opened.body)}`);
  await checkBound("open", opened.body);

  const proof = () =>
    new SignJWT({ htm: "POST", htu: meta.token_endpoint, jti: randomUUID() })
      .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk })
      .setIssuedAt()
      .sign(privateKey);
  const refresh = (refreshToken, dpop) =>
    call(meta.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", dpop },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: args["client-id"] }),
    });

  const first = await proof();
  if (decodeProtectedHeader(first).jwk?.d !== undefined) fail("a proof must not carry the private key");
  const refreshed = await refresh(opened.body.refresh_token, first);
  if (refreshed.status !== 200) fail(`refresh: ${refreshed.status} ${JSON.stringify(refreshed.body)}`);
  await checkBound("refresh with a jose proof", refreshed.body);

  const replayed = await refresh(refreshed.body.refresh_token, first);
  if (replayed.status !== 400 || replayed.body?.error !== "invalid_dpop_proof") {
    fail(`replay: ${replayed.status} ${JSON.stringify(replayed.body)}`);
  }
  steps.push({ step: "replayed proof refused" });
}

try {
  await main();
  console.log(JSON.stringify({ ok: true, steps }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, steps, error: String(error?.message ?? error) }));
  process.exit(1);
}
