"""moto's server, answering one request at a time.

`moto_server` serves on threads, and its DynamoDB checks a ConditionExpression and then writes
without a lock between the two, so two conditional puts racing on one item can both succeed.
Real DynamoDB never lets that happen, and rrstitch's claim protocol relies on it (two racing
finalizers: exactly one claim wins). Serving requests one at a time makes each conditional
write atomic, as it is in DynamoDB; connections still stay open on their threads.

Same flags as moto_server: -H HOST -p PORT.
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class OneAtATime:
    """WSGI middleware: the app runs, and its response is read, under one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, OneAtATime(app), threaded=True)


if __name__ == "__main__":
    main()
