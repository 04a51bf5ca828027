//! `ActiveModelBehavior`: record ids are assigned before an insert.

use proc_macro2::TokenStream;
use quote::quote;

/// The `ActiveModelBehavior` impl whose `before_save` calls `morango::__private::before_save`.
pub fn expand() -> TokenStream {
    quote! {
        #[automatically_derived]
        #[::morango::__private::async_trait::async_trait]
        impl ::morango::__private::sea_orm::ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(
                self,
                _db: &C,
                insert: bool,
            ) -> ::core::result::Result<Self, ::morango::__private::sea_orm::DbErr>
            where
                C: ::morango::__private::sea_orm::ConnectionTrait,
            {
                ::morango::__private::before_save::<Entity>(self, insert)
            }
        }
    }
}

/// The empty `ActiveModelBehavior` impl emitted when validation failed, so SeaORM's derives compile.
pub fn empty() -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::morango::__private::sea_orm::ActiveModelBehavior for ActiveModel {}
    }
}
