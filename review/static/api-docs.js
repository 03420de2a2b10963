// The API docs page (/api/docs): Swagger UI, vendored (review/static/vendor), started from this file
// because the Content-Security-Policy forbids inline script. "Try it out" uses the page's session
// (and its CSRF token for POST/DELETE) or a personal token entered under "Authorize".
(function () {
  "use strict";
  var el = document.getElementById("swagger-ui");
  if (!el || !window.SwaggerUIBundle) return;
  var csrf = document.body.getAttribute("data-csrf") || "";
  window.ui = window.SwaggerUIBundle({
    url: el.getAttribute("data-spec"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,            // never send the spec to validator.swagger.io
    persistAuthorization: true,
    tryItOutEnabled: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (req) {
      if (csrf && !(req.headers && req.headers.Authorization)) req.headers["X-CSRF-Token"] = csrf;
      return req;
    }
  });
})();
