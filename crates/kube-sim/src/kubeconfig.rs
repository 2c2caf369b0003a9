//! A kubeconfig pointing at the simulator that both kubectl and kube-rs accept.

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (kubeconfig `*-data` fields).
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The kubeconfig YAML for a server at `url`, trusting `ca_pem` when given.
/// The context is named `kube-sim`; any token is accepted by the simulator.
pub fn kubeconfig(url: &str, ca_pem: Option<&str>) -> String {
    let trust = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64(pem.as_bytes())
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\n{trust}\
         users:\n- name: kube-sim\n  user:\n    token: kube-sim\ncontexts:\n- name: kube-sim\n  context:\n    \
         cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
