// Boots Swagger UI. Kept out of index.html so the page can be served with a
// Content-Security-Policy that forbids inline scripts; the spec URL arrives
// through a data attribute rendered server-side.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: true,
    // The default validator badge posts the spec to an external service.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
});
