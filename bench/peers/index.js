// The benchmark's echo on Google's Functions Framework: answers the JSON body it was sent.
const functions = require('@google-cloud/functions-framework');

functions.http('echo', (req, res) => {
  res.json(req.body);
});
