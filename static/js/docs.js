// Swagger UI for /docs, from this server's node_modules (a file, not an inline script: the
// Content-Security-Policy allows scripts from this server only).
window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
