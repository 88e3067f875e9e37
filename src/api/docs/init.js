// Starts Swagger UI on the page's #swagger-ui element, over the document its data-spec-url names.
// A file rather than an inline script: the page's Content-Security-Policy allows scripts from
// 'self' only.
(() => {
  const root = document.getElementById('swagger-ui');
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    // The token pasted into Authorize survives a reload (kept in this browser's localStorage).
    persistAuthorization: true,
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    filter: true,
    requestSnippetsEnabled: true,
    // The default would show a badge fetched from validator.swagger.io: nothing leaves this origin.
    validatorUrl: null,
  });
})();
