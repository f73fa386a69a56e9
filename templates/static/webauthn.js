// Security keys and passkeys for the hosted pages (no inline script: the
// Content-Security-Policy allows only files under /static/).
//
// A button <button type="button" data-webauthn="register|login|passkey"
// data-begin-url="URL" data-status="ID" hidden> inside a form: a click posts the
// form to data-begin-url, which answers with {"publicKey": {...}} (go-webauthn's
// options), runs navigator.credentials.create or .get, puts the answer
// (PublicKeyCredential.toJSON()) into the form's "credential" field and
// submits the form. Buttons ship hidden and are shown only when the browser
// can use WebAuthn; otherwise the status element says so.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-webauthn]");
  if (!buttons.length) {
    return;
  }
  var supported = window.PublicKeyCredential && navigator.credentials &&
    typeof navigator.credentials.create === "function" && window.isSecureContext;
  if (!supported) {
    // Parts of a form that only make sense with a working button.
    document.querySelectorAll("[data-webauthn-only]").forEach(function (el) { el.hidden = true; });
  }

  function say(el, text) {
    if (el) {
      el.textContent = text;
    }
  }

  // base64url <-> ArrayBuffer, for browsers without the JSON helpers.
  function decode(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) {
      out[i] = b.charCodeAt(i);
    }
    return out.buffer;
  }
  function encode(buf) {
    if (!buf) {
      return undefined;
    }
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: decode(c.id), transports: c.transports };
    });
  }
  function creationOptions(o) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    }
    var p = Object.assign({}, o);
    p.challenge = decode(o.challenge);
    p.user = Object.assign({}, o.user, { id: decode(o.user.id) });
    p.excludeCredentials = descriptors(o.excludeCredentials);
    return p;
  }
  function requestOptions(o) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    }
    var p = Object.assign({}, o);
    p.challenge = decode(o.challenge);
    p.allowCredentials = descriptors(o.allowCredentials);
    return p;
  }
  function toJSON(cred) {
    if (typeof cred.toJSON === "function") {
      return cred.toJSON();
    }
    var r = cred.response, out = {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      out.response.userHandle = encode(r.userHandle);
    }
    return out;
  }

  buttons.forEach(function (button) {
    var form = button.form;
    var status = document.getElementById(button.getAttribute("data-status"));
    var kind = button.getAttribute("data-webauthn");
    if (!form) {
      return;
    }
    if (!supported) {
      say(status, kind === "passkey"
        ? ""
        : "This browser cannot use security keys here. Use another method, or another browser.");
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (kind === "register" && form.elements.name && !form.elements.name.reportValidity()) {
        return;
      }
      button.disabled = true;
      say(status, "Follow your browser's prompt…");
      fetch(button.getAttribute("data-begin-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
        body: new URLSearchParams(new FormData(form))
      }).then(function (resp) {
        if (!resp.ok || (resp.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
          throw new Error("begin");
        }
        return resp.json();
      }).then(function (options) {
        if (kind === "register") {
          return navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
        }
        return navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
      }).then(function (cred) {
        form.elements.credential.value = JSON.stringify(toJSON(cred));
        form.submit();
      }).catch(function (err) {
        button.disabled = false;
        if (err && err.message === "begin") {
          say(status, "This page has expired. Reload it and try again.");
        } else if (err && err.name === "InvalidStateError") {
          say(status, "This security key is already added to your account.");
        } else {
          say(status, "The prompt was closed, or the key or device did not confirm it's you (touch, fingerprint, face or PIN). Try again, or use another method.");
        }
      });
    });
  });
})();
