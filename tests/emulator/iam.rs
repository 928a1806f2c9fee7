//! Principal tags from IAM (moto's): a user's, a role's, an assumed-role session's role's;
//! principals IAM does not hold carry none.

use aws_sdk_iam::types::Tag;
use paved_core::adapters::iam::IamDirectory;
use paved_core::domain::access::Principal;
use paved_core::ports::PrincipalDirectory;

use crate::env::TestEnv;

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

#[tokio::test]
async fn users_roles_and_sessions_carry_the_tags_iam_holds() {
    let env = TestEnv::new().await;
    let iam = aws_sdk_iam::Client::new(&env.sdk);
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (user, role) = (format!("ana-{suffix}"), format!("Deployer-{suffix}"));
    iam.create_user()
        .user_name(&user)
        .path("/team/")
        .tags(tag("team", "platform"))
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .tags(tag("stage", "ci"))
        .tags(tag("owner", "platform"))
        .send()
        .await
        .unwrap();
    let directory = IamDirectory::new(iam);
    let tags = |arn: String| {
        let directory = &directory;
        async move { directory.tags(&Principal::new(arn)).await.unwrap() }
    };
    let user_tags = tags(format!("arn:aws:iam::123456789012:user/team/{user}")).await;
    assert_eq!(user_tags.get("team").map(String::as_str), Some("platform"));
    let session = tags(format!(
        "arn:aws:sts::123456789012:assumed-role/{role}/run-1"
    ))
    .await;
    assert_eq!(session.len(), 2, "{session:?}");
    assert_eq!(session["stage"], "ci");
    assert!(
        tags(format!("arn:aws:iam::123456789012:user/gone-{suffix}"))
            .await
            .is_empty()
    );
    assert!(
        tags("arn:aws:iam::123456789012:root".into())
            .await
            .is_empty()
    );
}
