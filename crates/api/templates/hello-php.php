<?php
// Hello world on PHP: handler "index.handler".
function handler($event, $context) {
    echo "hello from PHP, request " . $context->getRequestID() . "\n";
    return array("message" => "hello world", "event" => $event);
}
