// Passkey ceremonies of the reference pages: the only script satchel serves.
// Each button says what it does in data-passkey (register, login, second, enroll, reauth);
// the server's JSON API holds every challenge and checks every response.
"use strict";

(function () {
  function toBytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function toText(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: toBytes(d.id) }));
  }

  function serialise(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.detail || "The passkey could not be used.");
    }
    return data;
  }

  async function create(optionsPath, body) {
    const options = await api(optionsPath, body);
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return serialise(await navigator.credentials.create({ publicKey: options }));
  }

  async function get(optionsPath, body) {
    const options = await api(optionsPath, body);
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return serialise(await navigator.credentials.get({ publicKey: options }));
  }

  const ceremonies = {
    async register(button) {
      const name = document.getElementById("passkey-name");
      const credential = await create("/auth/passkeys/register/options", {});
      await api("/auth/passkeys/register", {
        credential: credential,
        name: name && name.value ? name.value : null,
      });
    },
    async login() {
      const credential = await get("/auth/passkeys/login/options", {});
      await api("/auth/passkeys/login", { credential: credential, transport: "cookie" });
    },
    async second(button) {
      const token = button.dataset.mfaToken;
      const credential = await get("/auth/passkeys/login/options", { mfa_token: token });
      await api("/auth/passkeys/login", { credential: credential, mfa_token: token });
    },
    async enroll(button) {
      const token = button.dataset.mfaToken;
      const credential = await create("/auth/passkeys/register/options", { mfa_token: token });
      await api("/auth/passkeys/register", { credential: credential, mfa_token: token });
    },
    async reauth() {
      const credential = await get("/auth/passkeys/reauthenticate/options", {});
      await api("/auth/reauthenticate", { passkey: credential });
    },
  };

  function report(button, message) {
    const target = document.getElementById(button.dataset.status || "passkey-status");
    if (target) {
      target.textContent = message;
      target.hidden = false;
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-passkey]");
    if (!button) return;
    event.preventDefault();
    if (!window.PublicKeyCredential) {
      report(button, "This browser does not support passkeys.");
      return;
    }
    button.disabled = true;
    try {
      await ceremonies[button.dataset.passkey](button);
      window.location.assign(button.dataset.next || "/");
    } catch (error) {
      report(button, error && error.message ? error.message : "The passkey could not be used.");
      button.disabled = false;
    }
  });
})();
