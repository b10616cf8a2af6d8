// Hello world on Node.js: handler "index.handler".
exports.handler = async (event, context) => {
  console.log("hello from Node.js, request", context.getRequestID());
  return { message: "hello world", event };
};
