//! Storage policy names from vCenter's Storage Policy Based Management (SPBM) service on `/pbm`.

use crate::client::{Endpoint, MoRef, VcenterClient, VsphereError};
use crate::xml::{Element, escape};

/// The `PbmQueryProfile` body listing every storage profile id.
pub fn query_profile_body(profile_manager: &MoRef) -> String {
    format!(
        r#"<PbmQueryProfile xmlns="urn:pbm">{}<resourceType><resourceType>STORAGE</resourceType></resourceType></PbmQueryProfile>"#,
        profile_manager.to_xml("_this")
    )
}

/// The `PbmRetrieveContent` body for these profile ids.
pub fn retrieve_content_body(profile_manager: &MoRef, ids: &[String]) -> String {
    let ids: String = ids
        .iter()
        .map(|id| {
            format!(
                "<profileIds><uniqueId>{}</uniqueId></profileIds>",
                escape(id)
            )
        })
        .collect();
    format!(
        r#"<PbmRetrieveContent xmlns="urn:pbm">{}{ids}</PbmRetrieveContent>"#,
        profile_manager.to_xml("_this")
    )
}

/// Profile ids of a `PbmQueryProfileResponse`.
pub fn parse_profile_ids(response: &Element) -> Vec<String> {
    response
        .children_named("returnval")
        .filter_map(|r| r.path_text(&["uniqueId"]))
        .map(str::to_owned)
        .collect()
}

/// Profile names of a `PbmRetrieveContentResponse`.
pub fn parse_profile_names(response: &Element) -> Vec<String> {
    response
        .children_named("returnval")
        .filter_map(|r| r.path_text(&["name"]))
        .map(str::to_owned)
        .collect()
}

impl VcenterClient {
    /// The names of every storage policy vCenter knows (`PbmRetrieveServiceContent`,
    /// `PbmQueryProfile`, `PbmRetrieveContent`).
    pub async fn storage_policy_names(&mut self) -> Result<Vec<String>, VsphereError> {
        const OP: &str = "PbmRetrieveServiceContent";
        self.require_session(OP)?;
        let (content, _) = self
            .call(
                Endpoint::Pbm,
                OP,
                r#"<PbmRetrieveServiceContent xmlns="urn:pbm"><_this type="PbmServiceInstance">ServiceInstance</_this></PbmRetrieveServiceContent>"#,
            )
            .await?;
        let manager = content
            .path(&["returnval", "profileManager"])
            .map(MoRef::from_element)
            .ok_or_else(|| Self::malformed(OP, "no profileManager"))?;
        let (ids, _) = self
            .call(
                Endpoint::Pbm,
                "PbmQueryProfile",
                &query_profile_body(&manager),
            )
            .await?;
        let ids = parse_profile_ids(&ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (profiles, _) = self
            .call(
                Endpoint::Pbm,
                "PbmRetrieveContent",
                &retrieve_content_body(&manager, &ids),
            )
            .await?;
        Ok(parse_profile_names(&profiles))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xml;

    #[test]
    fn parses_recorded_profile_query_and_content() {
        let ids = xml::parse(r#"<PbmQueryProfileResponse xmlns="urn:pbm"><returnval><uniqueId>aa6d</uniqueId></returnval><returnval><uniqueId>f4e5</uniqueId></returnval></PbmQueryProfileResponse>"#).unwrap();
        assert_eq!(parse_profile_ids(&ids), vec!["aa6d", "f4e5"]);
        let content = xml::parse(r#"<PbmRetrieveContentResponse xmlns="urn:pbm" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><returnval xsi:type="PbmCapabilityProfile"><profileId><uniqueId>aa6d</uniqueId></profileId><name>vSAN Default Storage Policy</name><description>d</description></returnval></PbmRetrieveContentResponse>"#).unwrap();
        assert_eq!(
            parse_profile_names(&content),
            vec!["vSAN Default Storage Policy"]
        );
        let manager = MoRef {
            kind: "PbmProfileProfileManager".into(),
            value: "ProfileManager".into(),
        };
        assert!(
            retrieve_content_body(&manager, &["a&b".into()])
                .contains("<profileIds><uniqueId>a&amp;b</uniqueId></profileIds>")
        );
    }
}
