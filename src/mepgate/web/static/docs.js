// The API docs (/api/v1/docs): Swagger UI, served from this gateway (vendor/swagger-ui), over
// the gateway's own OpenAPI schema.  The schema validator is off: it would send the schema to
// a host outside the gateway.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
