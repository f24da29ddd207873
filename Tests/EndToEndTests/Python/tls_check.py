"""Python's ssl module checks a certificate chain, trusting exactly one root (a PEM file).

    tls_check.py proxy PROXY_HOST PROXY_PORT ROOT_PEM HOST PORT PATH   GET https://HOST:PORT/PATH through an HTTP proxy (CONNECT)
    tls_check.py direct HOST PORT NAME ROOT_PEM                         TLS handshake, SNI and hostname check for NAME

Prints one line; exits 0 when the check passes, 1 when the certificate is rejected (the line
carries the verification error), 2 on bad usage.
"""
import http.client
import socket
import ssl
import sys


def context(root):
    # cafile only: no system roots.
    return ssl.create_default_context(cafile=root)


def main(argv):
    try:
        if argv[:1] == ["proxy"] and len(argv) == 7:
            _, proxy_host, proxy_port, root, host, port, path = argv
            conn = http.client.HTTPSConnection(proxy_host, int(proxy_port), context=context(root), timeout=30)
            conn.set_tunnel(host, int(port))
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode(errors="replace").strip()
            print(f"status {response.status} {body}")
            return 0 if response.status == 200 else 1
        if argv[:1] == ["direct"] and len(argv) == 5:
            _, host, port, name, root = argv
            with socket.create_connection((host, int(port)), timeout=20) as raw:
                with context(root).wrap_socket(raw, server_hostname=name) as tls:
                    print(f"verified {tls.version()}")
            return 0
    except ssl.SSLCertVerificationError as error:
        print(f"rejected: {error.verify_message} ({error})")
        return 1
    except ssl.SSLError as error:
        print(f"rejected: {error}")
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
