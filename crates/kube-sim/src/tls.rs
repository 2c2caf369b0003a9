//! Serving certificates for the simulator: a throwaway CA and a leaf for 127.0.0.1 and localhost.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A CA and a leaf it signed, as PEM.
pub struct ServingCertificates {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The leaf certificate the server presents.
    pub leaf_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

impl ServingCertificates {
    /// Makes a fresh CA and leaf (rustls refuses a self-signed certificate used as its own CA).
    pub fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "csi-migrate kube-sim CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// The leaf followed by the CA, as a server sends its chain.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem, self.ca_pem)
    }
}
