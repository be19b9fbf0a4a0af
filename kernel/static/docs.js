// soko's /docs: Swagger UI from the pinned swagger-ui-bundle package, plus a store picker. A browser cannot set
// the Host header, so "Try it out" names the store with X-Tenant-ID (the tenancy plugin reads it on requests
// whose host names no store, such as 127.0.0.1, on its header_routes: every route in development).
(function () {
  "use strict";
  var field = document.getElementById("soko-tenant");
  var header = field.getAttribute("data-header");
  field.value = window.localStorage.getItem("soko-tenant") || "";
  field.addEventListener("change", function () {
    window.localStorage.setItem("soko-tenant", field.value.trim());
  });
  window.ui = SwaggerUIBundle({
    url: field.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: function (request) {
      var tenant = field.value.trim();
      if (tenant) {
        request.headers[header] = tenant;
      }
      return request;
    },
  });
})();
